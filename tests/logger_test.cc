// The daemon's log lines: text keeps the "xdcd: ..." form; JSON lines parse and carry the
// cluster, level, time and the context given; a failure repeated in a loop is rate-limited, and
// the next line written says how many were suppressed. A daemon configured for JSON logs writes
// JSON lines.
#include "replicator/logger.h"

#include <fstream>
#include <string>

#include "absl/strings/str_split.h"
#include "chaos/process.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/two_clusters.h"

namespace xdc::log {
namespace {

using ::testing::HasSubstr;

google::protobuf::Struct ParseJson(const std::string& line) {
  google::protobuf::Struct parsed;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(line, &parsed).ok()) << line;
  return parsed;
}

TEST(LoggerTest, TextLinesKeepTheXdcdForm) {
  EXPECT_EQ(FormatLine(Format::kText, absl::UnixEpoch(), "east", Level::kWarning,
                       "shard 3 task 7 not delivered", Fields().Shard(3), 0),
            "xdcd: shard 3 task 7 not delivered");
  EXPECT_EQ(FormatLine(Format::kText, absl::UnixEpoch(), "east", Level::kWarning, "again", {}, 12),
            "xdcd: again (12 similar lines suppressed before this one)");
}

TEST(LoggerTest, JsonLinesParseAndCarryTheirContext) {
  const std::string line =
      FormatLine(Format::kJson, absl::FromUnixMillis(1795340000123), "east", Level::kError,
                 "a \"quoted\"\nmessage",
                 Fields().Namespace("orders").Workflow("o-1").Shard(2).Peer("west"), 4);
  const google::protobuf::Struct parsed = ParseJson(line);
  const auto& fields = parsed.fields();
  EXPECT_EQ(fields.at("cluster").string_value(), "east");
  EXPECT_EQ(fields.at("level").string_value(), "error");
  EXPECT_EQ(fields.at("message").string_value(), "a \"quoted\"\nmessage");
  EXPECT_EQ(fields.at("namespace").string_value(), "orders");
  EXPECT_EQ(fields.at("workflow_id").string_value(), "o-1");
  EXPECT_EQ(fields.at("shard").number_value(), 2);
  EXPECT_EQ(fields.at("peer").string_value(), "west");
  EXPECT_EQ(fields.at("suppressed").number_value(), 4);
  EXPECT_EQ(fields.at("time").string_value(), "2026-11-22T09:33:20.123Z");
  // Context not given is left out rather than written empty.
  const google::protobuf::Struct bare =
      ParseJson(FormatLine(Format::kJson, absl::UnixEpoch(), "east", Level::kInfo, "m", {}, 0));
  EXPECT_FALSE(bare.fields().contains("shard"));
  EXPECT_FALSE(bare.fields().contains("suppressed"));
}

TEST(LoggerTest, ARepeatedFailureIsRateLimitedPerKeyAndTheSuppressedAreCounted) {
  RateLimiter limiter;
  const absl::Time start = absl::FromUnixSeconds(1000);
  int64_t suppressed = -1;
  for (int i = 0; i < kLogBurst; ++i) {
    ASSERT_TRUE(limiter.Allow("publish", start + absl::Milliseconds(i), suppressed));
    EXPECT_EQ(suppressed, 0);
  }
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(limiter.Allow("publish", start, suppressed));
  // Another key has its own budget.
  EXPECT_TRUE(limiter.Allow("apply", start, suppressed));
  // The next window writes again and reports what was dropped.
  ASSERT_TRUE(limiter.Allow("publish", start + kLogWindow, suppressed));
  EXPECT_EQ(suppressed, 100);
  ASSERT_TRUE(limiter.Allow("publish", start + kLogWindow, suppressed));
  EXPECT_EQ(suppressed, 0);
}

TEST(LoggerTest, LevelsAndFormatsParseOrSayWhatIsAllowed) {
  EXPECT_EQ(*ParseLevel("warning"), Level::kWarning);
  EXPECT_EQ(*ParseFormat("json"), Format::kJson);
  EXPECT_THAT(ParseLevel("verbose").status().message(), HasSubstr("debug, info, warning, error"));
  EXPECT_THAT(ParseFormat("xml").status().message(), HasSubstr("text, json"));
}

// A daemon with log { format: "json" } writes its log as JSON lines naming its cluster.
TEST(LoggerProcessTest, ADaemonConfiguredForJsonWritesJsonLines) {
  ScopedDir dir("json-log");
  const std::string config_path = dir.path() + "/east.conf";
  {
    std::ofstream config(config_path);
    config << "cluster_name: \"east\"\nfailover_version_increment: 100\nshard_count: 2\n"
           << "clusters { name: \"east\" initial_failover_version: 1 }\n"
           << "data_dir: \"" << dir.path() << "/data\"\n"
           << "http_listen_address: \"127.0.0.1:0\"\n"
           << "log { format: \"json\" level: \"info\" }\n";
  }
  absl::StatusOr<std::unique_ptr<chaos::ChildProcess>> xdcd = chaos::ChildProcess::Spawn(
      {std::string(XDC_BIN_DIR) + "/xdcd", "--config", config_path}, dir.path() + "/east.log");
  ASSERT_TRUE(xdcd.ok()) << xdcd.status();
  // No API token is configured, so the daemon warns, in JSON.
  absl::StatusOr<std::string> warning =
      (*xdcd)->WaitForLine("\"level\":\"warning\"", absl::Seconds(30));
  ASSERT_TRUE(warning.ok()) << warning.status() << (*xdcd)->LogTail();
  const google::protobuf::Struct parsed = ParseJson(*warning);
  EXPECT_EQ(parsed.fields().at("cluster").string_value(), "east");
  EXPECT_THAT(parsed.fields().at("message").string_value(), HasSubstr("no api.bearer_token"));
  ASSERT_TRUE((*xdcd)->WaitForLine("^xdcd: ready$", absl::Seconds(30)).ok());
  absl::StatusOr<chaos::ExitStatus> stopped = (*xdcd)->Terminate();
  ASSERT_TRUE(stopped.ok());
  EXPECT_TRUE(stopped->exited_cleanly()) << stopped->ToString();
}

}  // namespace
}  // namespace xdc::log
