// Smoke test of xdc-bench: `xdc-bench --quick` (mock broker, well under a minute) writes a report
// with every section and sane values, and the SVG plot. It never asserts a speed: only that the
// figures exist, are positive where they must be, and are ordered (p50 <= p99 <= p999).
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "bench/lag_calculator.h"
#include "bench/report.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/run_command.h"

namespace xdc {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

std::string Bench() { return absl::StrCat(XDC_BIN_DIR, "/xdc-bench"); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The value at a dotted path ("raw.kafka.messages_per_second"); a test failure if missing.
const Value& At(const Struct& root, const std::string& path) {
  static const Value kMissing;
  const Struct* object = &root;
  std::string rest = path;
  for (;;) {
    const size_t dot = rest.find('.');
    const std::string key = rest.substr(0, dot);
    auto it = object->fields().find(key);
    if (it == object->fields().end()) {
      ADD_FAILURE() << "report has no " << path;
      return kMissing;
    }
    if (dot == std::string::npos) return it->second;
    object = &it->second.struct_value();
    rest = rest.substr(dot + 1);
  }
}

double Num(const Struct& root, const std::string& path) { return At(root, path).number_value(); }

void ExpectOrderedPercentiles(const Struct& root, const std::string& path) {
  const double p50 = Num(root, path + ".p50"), p99 = Num(root, path + ".p99"),
               p999 = Num(root, path + ".p999");
  EXPECT_GT(Num(root, path + ".events"), 0) << path;
  EXPECT_GE(p50, 0) << path;
  EXPECT_LE(p50, p99) << path;
  EXPECT_LE(p99, p999) << path;
}

void ExpectPhase(const Struct& root, const std::string& path, bool with_lag) {
  EXPECT_GT(Num(root, path + ".events_ok"), 0) << path;
  EXPECT_GT(Num(root, path + ".ack_events_per_second"), 0) << path;
  EXPECT_GT(Num(root, path + ".cpu_seconds_per_million_events"), 0) << path;
  EXPECT_GT(Num(root, path + ".peak_rss_kib.east"), 0) << path;
  EXPECT_GT(Num(root, path + ".peak_rss_kib.west"), 0) << path;
  if (with_lag) {
    EXPECT_GT(Num(root, path + ".replicated_events_per_second"), 0) << path;
    EXPECT_EQ(Num(root, path + ".not_observed"), 0) << path;
    ExpectOrderedPercentiles(root, path + ".lag_ms");
    ExpectOrderedPercentiles(root, path + ".latency_ms");
  }
}

// --- the lag calculator (pure) ---

bench::RequestRecord Acked(int8_t cluster, int32_t shard, int64_t sent_us, int64_t done_us) {
  bench::RequestRecord r;
  r.due_us = sent_us;
  r.sent_us = sent_us;
  r.done_us = done_us;
  r.shard = shard;
  r.events = 1;
  r.cluster = cluster;
  r.outcome = bench::Outcome::kOk;
  return r;
}

bench::StatusSample Seen(int8_t observer, int64_t start_us, int64_t end_us,
                         std::vector<int64_t> applied) {
  bench::StatusSample s;
  s.observer = observer;
  s.start_us = start_us;
  s.end_us = end_us;
  s.applied = std::move(applied);
  return s;
}

TEST(BenchLagTest, AnEventIsVisibleOnceEverythingSentBeforeItsAckIsApplied) {
  constexpr int32_t kShards = 1;
  // east (0) acknowledges two appends on shard 0; the second was sent before the first's ack,
  // so the first counts as visible only once both are applied (an upper bound on its lag).
  const std::vector<bench::RequestRecord> requests = {Acked(0, 0, 100, 200), Acked(0, 0, 150, 300)};
  // applied[source * shards + shard], as west (1) reports events applied from east.
  std::vector<bench::StatusSample> baseline(2);
  baseline[1] = Seen(1, 0, 0, {10, 0});
  const std::vector<bench::StatusSample> samples = {
      Seen(1, 190, 195, {12, 0}),  // asked before the first ack: never used for it
      Seen(1, 210, 220, {11, 0}), Seen(1, 230, 240, {11, 0}), Seen(1, 310, 320, {12, 0})};
  // (A count cannot go down in practice; the first sample only checks the "asked after" rule.)
  const bench::LagResult result = bench::ComputeLags(requests, samples, baseline, kShards);
  ASSERT_EQ(result.lags.size(), 2u);
  EXPECT_EQ(result.not_observed, 0);
  EXPECT_EQ(result.lags[0].ack_us, 200);
  EXPECT_EQ(result.lags[0].lag_us, 120);  // seen at 320
  EXPECT_EQ(result.lags[1].lag_us, 20);
  EXPECT_EQ(result.lags[1].latency_us, 170);  // from when it was due (150)
  EXPECT_EQ(result.last_visible_us, 320);
}

TEST(BenchLagTest, RefusedAppendsDoNotCountAndUnseenOnesAreReported) {
  std::vector<bench::RequestRecord> requests = {Acked(0, 0, 100, 200), Acked(0, 0, 120, 210),
                                                Acked(0, 1, 130, 220)};
  requests[1].outcome = bench::Outcome::kRefused;  // nothing written: not in the target
  std::vector<bench::StatusSample> baseline(2);
  baseline[1] = Seen(1, 0, 0, {0, 0, 0, 0});
  const std::vector<bench::StatusSample> samples = {Seen(1, 250, 260, {1, 0, 0, 0})};
  const bench::LagResult result = bench::ComputeLags(requests, samples, baseline, 2);
  ASSERT_EQ(result.lags.size(), 1u);
  EXPECT_EQ(result.lags[0].lag_us, 60);
  EXPECT_EQ(result.not_observed, 1);  // shard 1's append never shows up
}

TEST(BenchLagTest, PercentilesAreNearestRankWeightedByEvents) {
  std::vector<bench::EventLag> lags;
  for (int i = 1; i <= 1000; ++i) {
    lags.push_back({.ack_us = i, .lag_us = i * 1000, .latency_us = i * 2000, .events = 1});
  }
  const bench::Percentiles lag = bench::LagPercentiles(lags, bench::LagMeasure::kLag);
  EXPECT_EQ(lag.count, 1000);
  EXPECT_DOUBLE_EQ(lag.p50_ms, 500);
  EXPECT_DOUBLE_EQ(lag.p99_ms, 990);
  EXPECT_DOUBLE_EQ(lag.p999_ms, 999);
  EXPECT_DOUBLE_EQ(lag.max_ms, 1000);
  EXPECT_DOUBLE_EQ(bench::LagPercentiles(lags, bench::LagMeasure::kLatency).p50_ms, 1000);
  EXPECT_EQ(bench::LagPercentiles({}, bench::LagMeasure::kLag).count, 0);
}

// A run with --skip end-to-end (the 1M-workflow command) printed "xdc end to end 0 events/s" and
// "graceful handover 0.0 ms" as if they had been measured, and nothing of the scaling it ran.
TEST(BenchSummaryTest, LeavesOutSkippedSectionsAndShowsScalingPoints) {
  bench::Report report;
  report.options.run_end_to_end = false;
  report.options.run_failover = false;
  report.raw_kafka.messages_per_second = 146359;
  bench::WorkflowScalePoint point;
  point.workflows = 1000000;
  point.started = 1000000;
  point.fill.duration_seconds = 188.6;
  point.half_load.lag_ms.p50_ms = 8.6;
  point.half_load.lag_ms.p99_ms = 49.3;
  report.workflow_scaling.push_back(point);
  report.notes.push_back("end to end, failover and backpressure: skipped (--skip end-to-end)");

  const std::string text = bench::SummaryText(report);
  EXPECT_NE(text.find("raw Kafka"), std::string::npos) << text;
  EXPECT_EQ(text.find("xdc end to end"), std::string::npos) << text;
  EXPECT_EQ(text.find("graceful handover"), std::string::npos) << text;
  EXPECT_EQ(text.find("forced failover"), std::string::npos) << text;
  EXPECT_NE(
      text.find("1000000 workflows: started 1000000 in 188.6 s; half load lag p50 8.6 p99 49.3"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("note: end to end, failover and backpressure: skipped"), std::string::npos)
      << text;

  report.options.run_end_to_end = true;
  report.options.run_failover = true;
  report.max_sustainable_events_per_second = 3665;
  report.graceful.handover_ms = 93.2;
  const std::string full = bench::SummaryText(report);
  EXPECT_NE(full.find("xdc end to end       3665 events/s"), std::string::npos) << full;
  EXPECT_NE(full.find("graceful handover 93.2 ms"), std::string::npos) << full;
}

TEST(BenchTest, BadFlagExitsWithUsage) {
  CommandResult bad = RunCommand(Bench() + " --shards zero");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("--shards zero: takes an integer"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("usage: xdc-bench"), std::string::npos) << bad.output;
  CommandResult unknown = RunCommand(Bench() + " --frobnicate");
  EXPECT_EQ(unknown.exit_code, 2) << unknown.output;
  EXPECT_NE(unknown.output.find("unknown flag --frobnicate"), std::string::npos) << unknown.output;
}

TEST(BenchTest, QuickRunReportsEverySection) {
  std::string dir = absl::StrCat(::testing::TempDir(), "xdc_bench_XXXXXX");
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  CommandResult run = RunCommand(absl::StrCat(Bench(), " --quick --output ", dir));
  ASSERT_EQ(run.exit_code, 0) << run.output;

  Struct report;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(ReadFile(dir + "/report.json"), &report).ok());
  EXPECT_GT(Num(report, "message_bytes"), 0);
  EXPECT_GT(Num(report, "raw.kafka.messages_per_second"), 0);
  EXPECT_GT(Num(report, "raw.rocksdb.records_per_second"), 0);

  EXPECT_GT(Num(report, "end_to_end.max_sustainable_events_per_second"), 0);
  EXPECT_GT(Num(report, "end_to_end.ratio_to_raw_kafka"), 0);
  EXPECT_GT(Num(report, "end_to_end.ratio_to_raw_rocksdb"), 0);
  ExpectPhase(report, "end_to_end.cold_start", true);
  ExpectPhase(report, "end_to_end.saturation", true);
  const auto& loads = At(report, "end_to_end.loads").list_value().values();
  ASSERT_FALSE(loads.empty());
  for (const Value& load : loads) {
    ExpectPhase(load.struct_value(), "phase", true);
  }

  EXPECT_EQ(At(report, "failover.graceful.error").string_value(), "");
  EXPECT_GT(Num(report, "failover.graceful.handover_ms"), 0);
  EXPECT_GT(Num(report, "failover.graceful.daemon_writes_refused_ms"), 0);
  ExpectPhase(report, "failover.graceful.phase", true);
  EXPECT_EQ(At(report, "failover.forced.error").string_value(), "");
  EXPECT_GT(Num(report, "failover.forced.rto_ms"), 0);
  ExpectPhase(report, "failover.forced.phase", false);

  EXPECT_EQ(At(report, "backpressure.error").string_value(), "");
  EXPECT_GT(Num(report, "backpressure.rss_peak_kib.east"), 0);
  EXPECT_GT(Num(report, "backpressure.rss_peak_kib.west"), 0);
  EXPECT_GE(Num(report, "backpressure.catch_up_seconds"), 0);
  ExpectOrderedPercentiles(report, "backpressure.burst_lag_ms");
  ExpectPhase(report, "backpressure.phase", true);

  const auto& shards = At(report, "scaling.shards").list_value().values();
  ASSERT_EQ(shards.size(), 2u);  // --quick: 1 and 4 shards
  for (const Value& point : shards) {
    EXPECT_EQ(At(point.struct_value(), "error").string_value(), "");
    ExpectPhase(point.struct_value(), "saturation", true);
    ExpectPhase(point.struct_value(), "half_load", true);
  }
  const auto& workflows = At(report, "scaling.workflows").list_value().values();
  ASSERT_EQ(workflows.size(), 1u);  // --quick: 1000 workflows
  EXPECT_EQ(Num(workflows[0].struct_value(), "started"), 1000);
  EXPECT_GT(Num(workflows[0].struct_value(), "data_dir_bytes.east"), 0);
  ExpectPhase(workflows[0].struct_value(), "fill", true);

  const std::string svg = ReadFile(dir + "/lag-handover.svg");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("handover requested"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// With several appends per request (POST /v1/append-batch), every append is booked on its own:
// all acknowledged, none failed, and each one seen applied on the standby.
TEST(BenchTest, BatchedAppendsAreEachAcknowledgedAndReplicated) {
  std::string dir = absl::StrCat(::testing::TempDir(), "xdc_bench_XXXXXX");
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  CommandResult run = RunCommand(absl::StrCat(
      Bench(), " --quick --appends-per-request 8 --skip scaling,failover,backpressure --output ",
      dir));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  Struct report;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(ReadFile(dir + "/report.json"), &report).ok());
  EXPECT_EQ(Num(report, "options.appends_per_request"), 8);
  for (const std::string phase : {"end_to_end.cold_start", "end_to_end.saturation"}) {
    ExpectPhase(report, phase, true);
    EXPECT_EQ(Num(report, phase + ".requests_failed"), 0)
        << At(report, phase + ".first_error").string_value();
    EXPECT_EQ(Num(report, phase + ".requests_ok"), Num(report, phase + ".events_ok")) << phase;
  }
  EXPECT_EQ(Num(report, "end_to_end.cold_start.requests_ok"), 500);  // the warm-up's appends
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace xdc
