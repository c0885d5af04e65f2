#include "replicator/migration_api.h"

#include <string>

#include "absl/strings/str_format.h"
#include "replicator/api_json.h"

namespace xdc {
namespace {

constexpr std::string_view kClustersPath = "/v1/clusters";
constexpr std::string_view kClustersPrefix = "/v1/clusters/";
constexpr std::string_view kNamespacesPrefix = "/v1/namespaces/";

template <typename Result>
ApiResponse Answer(const absl::StatusOr<Result>& result, std::string route) {
  ApiResponse response = result.ok() ? JsonResponse(*result) : ErrorResponseFor(result.status());
  response.route = std::move(route);
  return response;
}

ApiResponse WrongMethod(const std::string& path, const std::string& method, const char* allowed,
                        std::string route) {
  ApiResponse response = ErrorResponseFor(absl::InvalidArgumentError(
      absl::StrFormat("%s does not take %s; use %s", path, method, allowed)));
  response.status = 405;
  response.route = std::move(route);
  return response;
}

}  // namespace

MigrationApi::MigrationApi(MembershipService& membership, BackfillPublisher& backfill)
    : membership_(membership), backfill_(backfill) {}

std::optional<ApiResponse> MigrationApi::Handle(const ApiRequest& request) {
  const std::string path = request.target.substr(0, request.target.find('?'));
  const bool get = request.method == "GET";
  const bool post = request.method == "POST";
  if (path == kClustersPath) {
    const std::string route(kClustersPath);
    if (get) return Answer(absl::StatusOr<ListClustersResponse>(membership_.List()), route);
    if (!post) return WrongMethod(path, request.method, "GET or POST", route);
    AddClusterRequest add;
    if (absl::Status s = ParseJsonBody(request.body, add); !s.ok()) {
      return Answer(absl::StatusOr<ListClustersResponse>(s), route);
    }
    return Answer(membership_.Add(add), route);
  }
  if (path.starts_with(kClustersPrefix) && path.ends_with("/remove")) {
    const std::string route = "/v1/clusters/{name}/remove";
    const std::string name =
        path.substr(kClustersPrefix.size(),
                    path.size() - kClustersPrefix.size() - std::string("/remove").size());
    if (!post) return WrongMethod(path, request.method, "POST", route);
    return Answer(membership_.Remove(name), route);
  }
  if (!path.starts_with(kNamespacesPrefix)) return std::nullopt;
  const std::string rest = path.substr(kNamespacesPrefix.size());
  const size_t slash = rest.find('/');
  if (slash == std::string::npos || slash == 0) return std::nullopt;
  const std::string name = rest.substr(0, slash);
  const std::string action = rest.substr(slash + 1);
  if (action == "clusters") {
    const std::string route = "/v1/namespaces/{name}/clusters";
    if (!post) return WrongMethod(path, request.method, "POST", route);
    NamespaceClustersRequest change;
    if (absl::Status s = ParseJsonBody(request.body, change); !s.ok()) {
      return Answer(absl::StatusOr<NamespaceRecord>(s), route);
    }
    return Answer(membership_.ChangeNamespaceMembers(name, change), route);
  }
  if (action == "backfill") {
    const std::string route = "/v1/namespaces/{name}/backfill";
    if (get) return Answer(backfill_.Status(name), route);
    if (!post) return WrongMethod(path, request.method, "GET or POST", route);
    StartMigrationRequest start;
    if (absl::Status s = ParseJsonBody(request.body, start); !s.ok()) {
      return Answer(absl::StatusOr<MigrationStatusResponse>(s), route);
    }
    if (!start.namespace_().empty() && start.namespace_() != name) {
      return Answer(
          absl::StatusOr<MigrationStatusResponse>(absl::InvalidArgumentError(absl::StrFormat(
              "the body names namespace '%s' but the path '%s'", start.namespace_(), name))),
          route);
    }
    start.set_namespace_(name);
    return Answer(backfill_.StartMigration(start), route);
  }
  if (action == "backfill/abort") {
    const std::string route = "/v1/namespaces/{name}/backfill/abort";
    if (!post) return WrongMethod(path, request.method, "POST", route);
    return Answer(backfill_.Abort(name), route);
  }
  return std::nullopt;
}

}  // namespace xdc
