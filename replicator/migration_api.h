// The HTTP routes of federation membership and migration backfill (docs/api.md):
//
//   GET  /v1/clusters                        -> ListClustersResponse
//   POST /v1/clusters                        AddClusterRequest -> ListClustersResponse
//   POST /v1/clusters/{name}/remove          -> ListClustersResponse
//   POST /v1/namespaces/{name}/clusters      NamespaceClustersRequest -> NamespaceRecord
//   POST /v1/namespaces/{name}/backfill      StartMigrationRequest -> MigrationStatusResponse
//   GET  /v1/namespaces/{name}/backfill      -> MigrationStatusResponse
//   POST /v1/namespaces/{name}/backfill/abort  -> MigrationStatusResponse
//
// The daemon asks these routes first and passes every other request to ApiHandler. They run
// without the daemon's config lock held (MembershipService takes it itself).
//
// Thread-safe: handles requests concurrently.
#pragma once

#include <optional>

#include "replicator/api_handler.h"
#include "replicator/backfill_publisher.h"
#include "replicator/membership_service.h"

namespace xdc {

class MigrationApi {
 public:
  MigrationApi(MembershipService& membership, BackfillPublisher& backfill);

  // The answer if `request` is one of these routes, else nullopt.
  [[nodiscard]] std::optional<ApiResponse> Handle(const ApiRequest& request);

 private:
  MembershipService& membership_;
  BackfillPublisher& backfill_;
};

}  // namespace xdc
