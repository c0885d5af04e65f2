// Three clusters in one process: a namespace handed over north -> east -> west while west was
// away for the first handover. West may activate only once it holds north's events too (the
// handover markers carry east's shard version vector), so the last handover still loses nothing
// and forks nothing.
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "chaos/fault_points.h"
#include "tests/ledger_client.h"
#include "tests/two_clusters.h"

namespace xdc {
namespace {

using ::testing::HasSubstr;

DaemonConfig ThreeClusterConfig(const std::string& cluster, const std::string& data_dir,
                                const std::string& bootstrap) {
  DaemonConfig config = MakeConfig(cluster, data_dir, bootstrap);
  ClusterConfig* north = config.add_clusters();
  north->set_name("north");
  north->set_initial_failover_version(3);
  return config;
}

class ThreeClustersTest : public ::testing::Test {
 protected:
  static constexpr char kNamespace[] = "orders";

  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Daemon>> east =
        Daemon::Start(ThreeClusterConfig("east", dirs_.at("east").path(), ""));
    ASSERT_TRUE(east.ok()) << east.status();
    daemons_["east"] = *std::move(east);
    clients_["east"] = std::make_unique<HttpClient>(daemons_["east"]->http_address());
    addresses_["east"] = daemons_["east"]->http_address();
    for (const char* name : {"west", "north"}) ASSERT_NO_FATAL_FAILURE(Start(name));
  }

  void TearDown() override {
    // West and north consume from east's embedded Kafka: stop them first.
    clients_.clear();
    daemons_.erase("west");
    daemons_.erase("north");
    daemons_.clear();
  }

  void Start(const std::string& name) {
    absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(
        ThreeClusterConfig(name, dirs_.at(name).path(), daemons_.at("east")->kafka_bootstrap()));
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemons_[name] = *std::move(daemon);
    clients_[name] = std::make_unique<HttpClient>(daemons_[name]->http_address());
    std::lock_guard<std::mutex> lock(addresses_mu_);
    addresses_[name] = daemons_[name]->http_address();
  }

  void Stop(const std::string& name) {
    {
      std::lock_guard<std::mutex> lock(addresses_mu_);
      addresses_.erase(name);
    }
    clients_.erase(name);
    daemons_.erase(name);
  }

  // The load's view of where each cluster listens (it runs on another thread).
  std::string AddressOf(const std::string& cluster) {
    std::lock_guard<std::mutex> lock(addresses_mu_);
    auto it = addresses_.find(cluster);
    return it == addresses_.end() ? std::string() : it->second;
  }

  NamespaceRecord Record(const std::string& cluster) {
    NamespaceRecord record;
    absl::Status s = clients_.at(cluster)->Call("GET", absl::StrCat("/v1/namespaces/", kNamespace),
                                                nullptr, record);
    return s.ok() ? record : NamespaceRecord();
  }

  // Graceful handover from `source` to `target`; waits until the source follows the target.
  void HandOver(const std::string& source, const std::string& target) {
    FailoverRequest request;
    request.set_target_cluster(target);
    NamespaceRecord started;
    absl::Status s = clients_.at(source)->Call(
        "POST", absl::StrCat("/v1/namespaces/", kNamespace, "/failover"), &request, started);
    ASSERT_TRUE(s.ok()) << s;
    ASSERT_TRUE(WaitUntil([&] { return Record(source).active_cluster() == target; }))
        << source << " -> " << target << " never completed";
  }

  std::map<std::string, ScopedDir> dirs_ = [] {
    std::map<std::string, ScopedDir> dirs;
    for (const char* name : {"east", "west", "north"}) dirs.try_emplace(name, name);
    return dirs;
  }();
  std::map<std::string, std::unique_ptr<Daemon>> daemons_;
  std::map<std::string, std::unique_ptr<HttpClient>> clients_;
  std::mutex addresses_mu_;
  std::map<std::string, std::string> addresses_;
};

TEST_F(ThreeClustersTest, HandoverToAClusterThatMissedAnEarlierOneLosesNothing) {
  RegisterNamespaceRequest request;
  request.set_name(kNamespace);
  for (const char* c : {"east", "west", "north"}) request.add_clusters(c);
  request.set_active_cluster("north");
  NamespaceRecord record;
  ASSERT_TRUE(clients_.at("north")->Call("POST", "/v1/namespaces", &request, record).ok());
  ASSERT_TRUE(WaitUntil(
      [&] { return Record("east").id() == record.id() && Record("west").id() == record.id(); }));

  LedgerClient load([&](const std::string& cluster) { return AddressOf(cluster); }, "north",
                    kNamespace, LedgerClient::TransportErrors::kFail);
  std::atomic<bool> stop{false};
  std::thread writer([&] { load.Run(stop); });
  ASSERT_TRUE(WaitUntil([&] { return load.acked_count() >= 100; }));

  // West is away while north writes more and hands over to east: it lacks the end of north's
  // stream, and (with the link from north held) cannot get it while east hands over to it.
  Stop("west");
  const size_t north_before = load.acked_at(3);
  ASSERT_TRUE(WaitUntil([&] { return load.acked_at(3) >= north_before + 20; }));
  ASSERT_NO_FATAL_FAILURE(HandOver("north", "east"));
  ASSERT_TRUE(WaitUntil([&] { return load.acked_at(101) >= 50; }));  // east writes at 101
  const std::string hold_north = std::string(fault::kApplyHoldPrefix) + "north";
  fault::Arm(hold_north);
  struct Release {
    std::string name;
    ~Release() { fault::Disarm(name); }
  } release{hold_north};
  ASSERT_NO_FATAL_FAILURE(Start("west"));
  FailoverRequest to_west;
  to_west.set_target_cluster("west");
  NamespaceRecord started;
  ASSERT_TRUE(clients_.at("east")
                  ->Call("POST", absl::StrCat("/v1/namespaces/", kNamespace, "/failover"), &to_west,
                         started)
                  .ok());
  // West has every marker of east's streams, but not what east had applied from north.
  DescribeNamespaceResponse waiting;
  ASSERT_TRUE(WaitUntil([&] {
    waiting = DescribeNamespaceResponse();
    return clients_.at("west")
               ->Call("GET", absl::StrCat("/v1/namespaces/", kNamespace, "/describe"), nullptr,
                      waiting)
               .ok() &&
           waiting.handover_target().shards_seen_size() == 4 &&
           // East's record comes on its control topic, which Kafka may deliver after the markers.
           Record("west").active_cluster() == "east";
  }));
  EXPECT_THAT(absl::StrJoin(waiting.waiting_for(), "\n"), HasSubstr("behind cluster 'north'"));
  EXPECT_EQ(Record("east").state(), NAMESPACE_STATE_HANDOVER);
  fault::Disarm(hold_north);
  ASSERT_TRUE(WaitUntil([&] { return Record("east").active_cluster() == "west"; }));
  ASSERT_TRUE(WaitUntil([&] { return load.acked_at(102) >= 50; }));  // west writes at 102
  stop = true;
  writer.join();
  EXPECT_THAT(load.errors_, ::testing::IsEmpty());

  // All three converge on the same histories, each with one branch, holding every acknowledged
  // event at its version.
  std::map<std::string, ListDigestsResponse> digests;
  ASSERT_TRUE(WaitUntil([&] {
    for (const char* c : {"east", "west", "north"}) {
      absl::StatusOr<ListDigestsResponse> d = Digests(*clients_.at(c), kNamespace);
      if (!d.ok()) return false;
      digests[c] = *d;
    }
    return google::protobuf::util::MessageDifferencer::Equals(digests["east"], digests["west"]) &&
           google::protobuf::util::MessageDifferencer::Equals(digests["east"], digests["north"]);
  })) << "the three clusters never converged";
  std::map<std::string, GetHistoryResponse> histories;
  for (const WorkflowDigest& workflow : digests["west"].workflows()) {
    GetHistoryResponse& history = histories[workflow.workflow_id()];
    ASSERT_TRUE(clients_.at("west")
                    ->Call("GET",
                           absl::StrCat("/v1/history?namespace=", kNamespace,
                                        "&workflow_id=", workflow.workflow_id()),
                           nullptr, history)
                    .ok());
    EXPECT_EQ(history.version_histories().histories_size(), 1) << workflow.workflow_id();
  }
  for (const auto& [workflow, event_id, version] : load.acked_) {
    const GetHistoryResponse& history = histories[workflow];
    ASSERT_GE(history.events_size(), event_id) << workflow;
    EXPECT_EQ(history.events(event_id - 1).version(), version) << workflow << " " << event_id;
  }
  const NamespaceRecord final_record = Record("north");
  EXPECT_EQ(final_record.active_cluster(), "west");
  ASSERT_EQ(final_record.failover_history_size(), 2);
  EXPECT_EQ(final_record.failover_history(0).to_cluster(), "east");
  EXPECT_EQ(final_record.failover_history(1).to_cluster(), "west");
}

}  // namespace
}  // namespace xdc
