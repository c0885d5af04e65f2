#include "bench/message_size.h"

#include <string>

#include "protocol/message_codec.h"
#include "protocol/xdc.pb.h"

namespace xdc::bench {

int ReplicationMessageBytes(int events, int payload_bytes) {
  // Typical field values: ids of the lengths xdcd generates, times of today's magnitude.
  constexpr int64_t kTypicalMicros = 1'800'000'000'000'000;
  constexpr int64_t kTypicalTaskId = 1'000'000;
  constexpr int64_t kTypicalEventId = 100;
  HistoryMessage message;
  ReplicationTask& task = *message.mutable_task();
  task.set_task_id(kTypicalTaskId);
  task.set_shard(1);
  task.set_source_cluster("east");
  task.mutable_workflow()->set_namespace_id(std::string(32, 'a'));
  task.mutable_workflow()->set_workflow_id("wf-123456");
  task.mutable_workflow()->set_run_id(std::string(32, 'b'));
  VersionHistoryItem& item = *task.add_version_history_items();
  item.set_event_id(kTypicalEventId + events);
  item.set_version(1);
  for (int i = 0; i < events; ++i) {
    HistoryEvent& event = *task.add_events();
    event.set_event_id(kTypicalEventId + i);
    event.set_version(1);
    event.set_event_time_unix_micros(kTypicalMicros);
    event.set_event_type(ACTIVITY_TASK_SCHEDULED);
    event.set_attributes(std::string(static_cast<size_t>(payload_bytes), 'x'));
  }
  task.set_created_unix_micros(kTypicalMicros);
  return static_cast<int>(EncodeFrame(message).size());
}

}  // namespace xdc::bench
