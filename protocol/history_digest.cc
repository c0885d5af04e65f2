#include "protocol/history_digest.h"

#include "absl/strings/str_format.h"
#include "protocol/shard_hash.h"

namespace xdc {
namespace {

uint64_t MixInt(uint64_t h, int64_t value) { return Fnv1a64Int(value, h); }

}  // namespace

std::string HistoryDigest(const VersionHistory& branch,
                          const google::protobuf::RepeatedPtrField<HistoryEvent>& events) {
  uint64_t h = kFnv1a64Offset;
  h = MixInt(h, branch.items_size());
  for (const VersionHistoryItem& item : branch.items()) {
    h = MixInt(h, item.event_id());
    h = MixInt(h, item.version());
  }
  h = MixInt(h, events.size());
  for (const HistoryEvent& event : events) {
    h = MixInt(h, event.event_id());
    h = MixInt(h, event.version());
    h = MixInt(h, event.event_time_unix_micros());
    h = MixInt(h, event.event_type());
    h = MixInt(h, static_cast<int64_t>(event.attributes().size()));
    h = Fnv1a64(event.attributes(), h);
  }
  return absl::StrFormat("%016x", h);
}

}  // namespace xdc
