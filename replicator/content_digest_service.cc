#include "replicator/content_digest_service.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "protocol/content_digest.h"
#include "protocol/shard_hash.h"

namespace xdc {
namespace {

absl::StatusOr<std::string> Param(const ContentDigestService::Query& query,
                                  const std::string& name) {
  auto it = query.find(name);
  if (it == query.end() || it->second.empty()) {
    return absl::InvalidArgumentError(absl::StrFormat("query parameter '%s' is required", name));
  }
  return it->second;
}

absl::StatusOr<int32_t> ShardParam(const ContentDigestService::Query& query, int32_t shard_count) {
  absl::StatusOr<std::string> text = Param(query, "shard");
  if (!text.ok()) return text.status();
  int32_t shard = -1;
  if (!absl::SimpleAtoi(*text, &shard) || shard < 0 || shard >= shard_count) {
    return absl::InvalidArgumentError(
        absl::StrFormat("shard must be a number from 0 to %d", shard_count - 1));
  }
  return shard;
}

// The page token is the hex of "<bucket>\0<workflow id>\0<run id>" of the last leaf returned.
using Position = std::tuple<int32_t, std::string, std::string>;

std::string EncodeToken(const Position& last) {
  return absl::BytesToHexString(absl::StrCat(std::get<0>(last), std::string("\0", 1),
                                             std::get<1>(last), std::string("\0", 1),
                                             std::get<2>(last)));
}

absl::StatusOr<Position> DecodeToken(const std::string& token) {
  const std::string bytes = absl::HexStringToBytes(token);
  std::vector<std::string> parts = absl::StrSplit(bytes, absl::ByChar('\0'));
  int32_t bucket = 0;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &bucket)) {
    return absl::InvalidArgumentError(
        "page_token is not one this API returned: pass next_page_token unchanged");
  }
  return Position{bucket, parts[1], parts[2]};
}

}  // namespace

ContentDigestService::ContentDigestService(const Store& store, const NamespaceRegistry& namespaces,
                                           int32_t shard_count)
    : store_(store), namespaces_(namespaces), shard_count_(shard_count) {}

absl::StatusOr<std::vector<ContentDigestService::Listed>> ContentDigestService::List(
    const std::string& namespace_id, int32_t shard, const std::set<int32_t>& buckets) const {
  std::vector<Listed> runs;
  absl::Status scanned = store_.ScanWorkflows(
      namespace_id, [&](const WorkflowKey& key, const absl::StatusOr<WorkflowMutableState>& state) {
        if (ShardFor(namespace_id, key.workflow_id(), shard_count_) != shard) {
          return absl::OkStatus();
        }
        const int32_t bucket = DigestBucketFor(key.workflow_id(), key.run_id());
        if (!buckets.empty() && !buckets.contains(bucket)) return absl::OkStatus();
        runs.push_back(Listed{.bucket = bucket, .key = key, .state = state});
        return absl::OkStatus();
      });
  if (!scanned.ok()) return scanned;
  std::sort(runs.begin(), runs.end(), [](const Listed& a, const Listed& b) {
    if (a.bucket != b.bucket) return a.bucket < b.bucket;
    return std::tie(a.key.workflow_id(), a.key.run_id()) <
           std::tie(b.key.workflow_id(), b.key.run_id());
  });
  return runs;
}

RunDigest ContentDigestService::Digest(const Listed& run) const {
  if (!run.state.ok()) {
    return MakeUnreadableRunDigest(run.key.workflow_id(), run.key.run_id(),
                                   absl::StrCat("state: ", run.state.status().ToString()));
  }
  const VersionHistories& histories = run.state->version_histories();
  std::vector<google::protobuf::RepeatedPtrField<HistoryEvent>> events;
  events.reserve(histories.histories_size());
  for (int i = 0; i < histories.histories_size(); ++i) {
    absl::StatusOr<google::protobuf::RepeatedPtrField<HistoryEvent>> branch =
        store_.ReadBranch(run.key, histories.histories(i));
    if (!branch.ok()) {
      return MakeUnreadableRunDigest(
          run.key.workflow_id(), run.key.run_id(),
          absl::StrCat("branch ", FormatItems(histories.histories(i).items()), ": ",
                       branch.status().ToString()));
    }
    events.push_back(*std::move(branch));
  }
  std::vector<BranchContent> branches;
  for (int i = 0; i < histories.histories_size(); ++i) {
    branches.push_back(BranchContent{.branch = &histories.histories(i),
                                     .events = &events[i],
                                     .current = i == histories.current_index()});
  }
  absl::StatusOr<std::optional<std::string>> current =
      store_.GetCurrentRun(run.key.namespace_id(), run.key.workflow_id());
  if (!current.ok()) {
    return MakeUnreadableRunDigest(run.key.workflow_id(), run.key.run_id(),
                                   absl::StrCat("current run: ", current.status().ToString()));
  }
  return MakeRunDigest(*run.state, branches,
                       current->has_value() && **current == run.key.run_id());
}

absl::StatusOr<DigestTreeResponse> ContentDigestService::Tree(const Query& query) const {
  absl::StatusOr<std::string> name = Param(query, "namespace");
  if (!name.ok()) return name.status();
  absl::StatusOr<int32_t> shard = ShardParam(query, shard_count_);
  if (!shard.ok()) return shard.status();
  absl::StatusOr<NamespaceRecord> ns = namespaces_.Get(*name);
  if (!ns.ok()) return ns.status();
  absl::StatusOr<std::vector<Listed>> runs = List(ns->id(), *shard, {});
  if (!runs.ok()) return runs.status();
  std::vector<RunDigest> leaves;
  leaves.reserve(runs->size());
  for (const Listed& run : *runs) leaves.push_back(Digest(run));
  const DigestTree tree(std::move(leaves));
  DigestTreeResponse response;
  response.set_namespace_(*name);
  response.set_shard(*shard);
  response.set_bucket_count(kDigestBucketsPerShard);
  response.set_root(tree.root());
  for (const DigestBucket& bucket : tree.buckets()) *response.add_buckets() = bucket;
  response.set_runs(static_cast<int64_t>(tree.leaves().size()));
  response.set_unreadable_runs(tree.unreadable_runs());
  return response;
}

absl::StatusOr<DigestLeavesResponse> ContentDigestService::Leaves(const Query& query) const {
  absl::StatusOr<std::string> name = Param(query, "namespace");
  if (!name.ok()) return name.status();
  absl::StatusOr<int32_t> shard = ShardParam(query, shard_count_);
  if (!shard.ok()) return shard.status();
  std::set<int32_t> buckets;
  if (auto it = query.find("buckets"); it != query.end()) {
    for (absl::string_view piece : absl::StrSplit(it->second, ',', absl::SkipEmpty())) {
      int32_t bucket = -1;
      if (!absl::SimpleAtoi(piece, &bucket) || bucket < 0 || bucket >= kDigestBucketsPerShard) {
        return absl::InvalidArgumentError(
            absl::StrFormat("buckets must be a comma-separated list of numbers from 0 to %d",
                            kDigestBucketsPerShard - 1));
      }
      buckets.insert(bucket);
    }
  }
  size_t limit = kDigestLeavesDefaultLimit;
  if (auto it = query.find("limit"); it != query.end()) {
    if (!absl::SimpleAtoi(it->second, &limit) || limit == 0 || limit > kDigestLeavesMaxLimit) {
      return absl::InvalidArgumentError(
          absl::StrFormat("limit must be a number from 1 to %d", kDigestLeavesMaxLimit));
    }
  }
  std::optional<Position> after;
  if (auto it = query.find("page_token"); it != query.end() && !it->second.empty()) {
    absl::StatusOr<Position> position = DecodeToken(it->second);
    if (!position.ok()) return position.status();
    after = *position;
  }
  absl::StatusOr<NamespaceRecord> ns = namespaces_.Get(*name);
  if (!ns.ok()) return ns.status();
  absl::StatusOr<std::vector<Listed>> runs = List(ns->id(), *shard, buckets);
  if (!runs.ok()) return runs.status();
  DigestLeavesResponse response;
  response.set_namespace_(*name);
  response.set_shard(*shard);
  for (const Listed& run : *runs) {
    const Position position{run.bucket, run.key.workflow_id(), run.key.run_id()};
    if (after.has_value() && position <= *after) continue;
    if (static_cast<size_t>(response.runs_size()) == limit) {
      const RunDigest& last = response.runs(response.runs_size() - 1);
      response.set_next_page_token(
          EncodeToken(Position{last.bucket(), last.workflow_id(), last.run_id()}));
      break;
    }
    *response.add_runs() = Digest(run);
  }
  return response;
}

}  // namespace xdc
