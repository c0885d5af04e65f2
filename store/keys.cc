#include "store/keys.h"

namespace xdc::keys {
namespace {

void AppendU32(std::string& out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void AppendU64(std::string& out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

uint64_t ReadU64(std::string_view bytes) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[i]);
  return v;
}

void AppendString(std::string& out, std::string_view s) {
  AppendU32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

}  // namespace

std::string PublishedTaskId(int32_t shard) {
  std::string key = "published/";
  AppendU32(key, static_cast<uint32_t>(shard));
  return key;
}

std::string TaskIdFloor(int32_t shard) {
  std::string key = "task_floor/";
  AppendU32(key, static_cast<uint32_t>(shard));
  return key;
}

std::string FederationMember(std::string_view cluster_name) {
  return std::string(kFederationMemberPrefix) + std::string(cluster_name);
}

std::string Backfill(std::string_view namespace_id) {
  return std::string(kBackfillPrefix) + std::string(namespace_id);
}

std::string NamespaceLearned(std::string_view namespace_id) {
  return std::string(kNamespaceLearnedPrefix) + std::string(namespace_id);
}

std::string Namespace(std::string_view namespace_id) { return std::string(namespace_id); }

std::string WorkflowPrefix(std::string_view namespace_id) {
  std::string key;
  AppendString(key, namespace_id);
  return key;
}

std::string Workflow(const WorkflowKey& key) {
  std::string out = WorkflowPrefix(key.namespace_id());
  AppendString(out, key.workflow_id());
  AppendString(out, key.run_id());
  return out;
}

bool DecodeWorkflow(std::string_view key, WorkflowKey& out) {
  std::string parts[3];
  for (std::string& part : parts) {
    if (key.size() < 4) return false;
    uint32_t size = 0;
    for (int i = 0; i < 4; ++i) size = (size << 8) | static_cast<unsigned char>(key[i]);
    key.remove_prefix(4);
    if (key.size() < size) return false;
    part = std::string(key.substr(0, size));
    key.remove_prefix(size);
  }
  if (!key.empty()) return false;
  out.set_namespace_id(parts[0]);
  out.set_workflow_id(parts[1]);
  out.set_run_id(parts[2]);
  return true;
}

std::string CurrentRun(std::string_view namespace_id, std::string_view workflow_id) {
  std::string out = WorkflowPrefix(namespace_id);
  AppendString(out, workflow_id);
  return out;
}

std::string Request(std::string_view namespace_id, std::string_view request_id) {
  std::string key;
  AppendString(key, namespace_id);
  AppendString(key, request_id);
  return key;
}

std::string EventPrefix(const WorkflowKey& key) { return Workflow(key); }

std::string EventPrefixEnd(const WorkflowKey& key) {
  // Every event key is the prefix and 16 more bytes: the prefix and 17 bytes 0xFF sorts after.
  return EventPrefix(key) + std::string(17, '\xff');
}

std::string Event(const WorkflowKey& key, int64_t event_id, int64_t version) {
  std::string out = EventPrefix(key);
  AppendU64(out, static_cast<uint64_t>(event_id));
  AppendU64(out, static_cast<uint64_t>(version));
  return out;
}

bool DecodeEventSuffix(std::string_view key, int64_t& event_id, int64_t& version) {
  if (key.size() < 16) return false;
  event_id = static_cast<int64_t>(ReadU64(key.substr(key.size() - 16)));
  version = static_cast<int64_t>(ReadU64(key.substr(key.size() - 8)));
  return true;
}

std::string Outbox(int32_t shard, int64_t task_id) {
  std::string key;
  AppendU32(key, static_cast<uint32_t>(shard));
  AppendU64(key, static_cast<uint64_t>(task_id));
  return key;
}

int64_t DecodeOutboxTaskId(std::string_view key) {
  return static_cast<int64_t>(ReadU64(key.substr(4)));
}

std::string ApplyProgress(std::string_view source_cluster, int32_t shard) {
  std::string key;
  AppendString(key, source_cluster);
  AppendU32(key, static_cast<uint32_t>(shard));
  return key;
}

std::string Parked(int64_t sequence) {
  std::string key;
  AppendU64(key, static_cast<uint64_t>(sequence));
  return key;
}

int64_t DecodeParkedSequence(std::string_view key) { return static_cast<int64_t>(ReadU64(key)); }

}  // namespace xdc::keys
