// Two clusters as real processes, for end-to-end tests: one xdc-kafka-mock (its own process, so
// Kafka outlives the daemons and SIGSTOP of it partitions the clusters), xdcd "east" (active for
// the fixture's namespace) and xdcd "west" (standby), each with its own config and data_dir. A
// cluster can be SIGKILLed and restarted on the same data_dir; with port 0 a restart listens on a
// new port, which the cluster's Endpoint publishes.
//
// Every wait is on a condition with a deadline (a log line, a record, converged digests).
//
// Used by tests/e2e_test.cc and tests/failover_e2e_test.cc.
#pragma once

#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "chaos/process.h"
#include "gtest/gtest.h"
#include "protocol/xdc.pb.h"
#include "replicator/http_client.h"

namespace xdc {

#ifndef ASSERT_OK
#define ASSERT_OK(expr)                                     \
  do {                                                      \
    const absl::Status assert_ok_status = (expr);           \
    ASSERT_TRUE(assert_ok_status.ok()) << assert_ok_status; \
  } while (false)
#endif

// A binary built next to the test.
inline std::string BinPath(const char* name) { return absl::StrCat(XDC_BIN_DIR, "/", name); }

// A cluster's current HTTP address. With port 0 a restarted xdcd listens on a new port; the
// generation counts (re)starts so clients can wait for the next one.
// Thread-safety: thread-safe.
class Endpoint {
 public:
  void Set(std::string address) {
    absl::MutexLock lock(&mu_);
    address_ = std::move(address);
    ++generation_;
  }
  std::pair<std::string, int64_t> Get() const {
    absl::MutexLock lock(&mu_);
    return {address_, generation_};
  }
  std::string address() const { return Get().first; }
  // Waits until the generation is past `seen`, at most `timeout`.
  void AwaitNewer(int64_t seen, absl::Duration timeout) const {
    absl::MutexLock lock(&mu_);
    auto newer = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return generation_ > seen; };
    mu_.AwaitWithTimeout(absl::Condition(&newer), timeout);
  }

 private:
  mutable absl::Mutex mu_;
  std::string address_ ABSL_GUARDED_BY(mu_);
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
};

struct Cluster {
  std::string name;
  int64_t initial_failover_version = 0;
  std::string config_path;
  std::string log_path;
  std::unique_ptr<chaos::ChildProcess> process;
  Endpoint endpoint;
};

// The fixture: Kafka mock + east + west, the namespace given to the constructor registered on
// east (active there) and known to west. Versions: east owns 1 mod 100, west 2 mod 100.
class ProcessClustersTest : public ::testing::Test {
 protected:
  static constexpr int kShardCount = 4;
  static constexpr int64_t kFailoverVersionIncrement = 100;
  static constexpr absl::Duration kStartTimeout = absl::Seconds(30);       // "ready" printed
  static constexpr absl::Duration kNamespaceTimeout = absl::Seconds(30);   // west learns it
  static constexpr absl::Duration kStopGrace = absl::Seconds(10);          // SIGTERM to exit
  static constexpr absl::Duration kPollInterval = absl::Milliseconds(50);  // re-check

  explicit ProcessClustersTest(std::string namespace_name)
      : namespace_name_(std::move(namespace_name)) {}

  void SetUp() override {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::string dir_template = absl::StrCat(::testing::TempDir(), "xdc_e2e_", name, "_XXXXXX");
    ASSERT_NE(mkdtemp(dir_template.data()), nullptr) << "mkdtemp " << dir_template;
    dir_ = dir_template;

    absl::StatusOr<std::unique_ptr<chaos::ChildProcess>> kafka =
        chaos::ChildProcess::Spawn({BinPath("xdc-kafka-mock"), "--cluster", "east", "--cluster",
                                    "west", "--shard-count", std::to_string(kShardCount)},
                                   dir_ + "/kafka.log");
    ASSERT_TRUE(kafka.ok()) << kafka.status();
    kafka_ = *std::move(kafka);
    absl::StatusOr<std::vector<std::string>> bootstrap =
        kafka_->WaitForMatch("^bootstrap: (\\S+)$", kStartTimeout);
    ASSERT_TRUE(bootstrap.ok()) << bootstrap.status();
    bootstrap_ = (*bootstrap)[1];

    east_ = MakeCluster("east", 1);
    west_ = MakeCluster("west", 2);
    ASSERT_NO_FATAL_FAILURE(StartCluster(*east_));
    ASSERT_NO_FATAL_FAILURE(StartCluster(*west_));
    ASSERT_NO_FATAL_FAILURE(RegisterNamespace());
  }

  void TearDown() override {
    if (kafka_ != nullptr) kafka_->Kill(SIGCONT).IgnoreError();  // a test may have stopped it
    for (Cluster* cluster : {east_.get(), west_.get()}) {
      if (cluster == nullptr || cluster->process == nullptr) continue;
      if (cluster->process->IsRunning()) cluster->process->Kill(SIGCONT).IgnoreError();
      absl::StatusOr<chaos::ExitStatus> exit = cluster->process->Terminate(kStopGrace);
      if (!exit.ok() || !exit->exited_cleanly()) {
        ADD_FAILURE() << "xdcd " << cluster->name << " did not stop cleanly on SIGTERM: "
                      << (exit.ok() ? exit->ToString() : exit.status().ToString());
      }
    }
    if (kafka_ != nullptr) {
      absl::StatusOr<chaos::ExitStatus> exit = kafka_->Terminate(kStopGrace);
      (void)exit;
    }
    if (HasFailure()) {
      for (Cluster* cluster : {east_.get(), west_.get()}) {
        if (cluster != nullptr && cluster->process != nullptr) {
          std::fprintf(stderr, "--- end of %s (xdcd %s):\n%s", cluster->log_path.c_str(),
                       cluster->name.c_str(), cluster->process->LogTail(40).c_str());
        }
      }
      std::fprintf(stderr, "e2e: keeping %s for inspection\n", dir_.c_str());
    } else if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  std::unique_ptr<Cluster> MakeCluster(const std::string& name, int64_t initial_version) {
    auto cluster = std::make_unique<Cluster>();
    cluster->name = name;
    cluster->initial_failover_version = initial_version;
    cluster->config_path = absl::StrCat(dir_, "/", name, ".conf");
    cluster->log_path = absl::StrCat(dir_, "/", name, ".log");
    std::ofstream config(cluster->config_path);
    config << "cluster_name: \"" << name << "\"\n"
           << "failover_version_increment: " << kFailoverVersionIncrement << "\n"
           << "shard_count: " << kShardCount << "\n"
           << "clusters { name: \"east\" initial_failover_version: 1 }\n"
           << "clusters { name: \"west\" initial_failover_version: 2 }\n"
           << "data_dir: \"" << dir_ << "/" << name << "\"\n"
           << "http_listen_address: \"127.0.0.1:0\"\n"
           << "kafka { bootstrap_servers: \"" << bootstrap_ << "\" }\n";
    return cluster;
  }

  // Starts (or restarts, same config and data_dir) a cluster and publishes its new address.
  void StartCluster(Cluster& cluster) {
    absl::StatusOr<std::unique_ptr<chaos::ChildProcess>> process = chaos::ChildProcess::Spawn(
        {BinPath("xdcd"), "--config", cluster.config_path}, cluster.log_path);
    ASSERT_TRUE(process.ok()) << process.status();
    cluster.process = *std::move(process);
    absl::StatusOr<std::vector<std::string>> listening = cluster.process->WaitForMatch(
        absl::StrCat("^xdcd: cluster ", cluster.name, " listening on http://(\\S+)$"),
        kStartTimeout);
    ASSERT_TRUE(listening.ok()) << listening.status();
    absl::StatusOr<std::string> ready =
        cluster.process->WaitForLine("^xdcd: ready$", kStartTimeout);
    ASSERT_TRUE(ready.ok()) << ready.status();
    cluster.endpoint.Set((*listening)[1]);
  }

  // Waits until `cluster`'s startup check stopped waiting for its peers (a restarted active
  // cluster refuses writes until then: docs/control-plane.md#startup-check).
  void WaitForStartupCheck(Cluster& cluster) {
    HttpClient client(cluster.endpoint.address());
    const absl::Time deadline = absl::Now() + kNamespaceTimeout;
    StatusResponse status;
    for (;;) {
      if (client.Call("GET", "/v1/status", nullptr, status).ok() &&
          status.startup_check().state() != StartupCheck::STATE_WAITING) {
        return;
      }
      ASSERT_LT(absl::Now(), deadline)
          << cluster.name
          << "'s startup check still waits: " << status.startup_check().ShortDebugString();
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  void CrashCluster(Cluster& cluster) {
    ASSERT_OK(cluster.process->Kill(SIGKILL));
    absl::StatusOr<chaos::ExitStatus> exit = cluster.process->Wait(kStopGrace);
    ASSERT_TRUE(exit.ok()) << exit.status();
    ASSERT_EQ(exit->signal, SIGKILL) << exit->ToString();
  }

  void RegisterNamespace() {
    HttpClient east(east_->endpoint.address());
    RegisterNamespaceRequest request;
    request.set_name(namespace_name_);
    request.add_clusters("east");
    request.add_clusters("west");
    request.set_active_cluster("east");
    NamespaceRecord record;
    ASSERT_OK(east.Call("POST", "/v1/namespaces", &request, record));
    ASSERT_EQ(record.active_cluster(), "east");

    HttpClient west(west_->endpoint.address());
    const absl::Time deadline = absl::Now() + kNamespaceTimeout;
    absl::Status last;
    for (;;) {
      NamespaceRecord replicated;
      last =
          west.Call("GET", absl::StrCat("/v1/namespaces/", namespace_name_), nullptr, replicated);
      if (last.ok()) {
        ASSERT_EQ(replicated.active_cluster(), "east");
        ASSERT_EQ(replicated.failover_version(), record.failover_version());
        return;
      }
      ASSERT_LT(absl::Now(), deadline) << "west did not learn namespace " << namespace_name_
                                       << " within " << kNamespaceTimeout << ": " << last;
      absl::SleepFor(kPollInterval);
    }
  }

  const std::string namespace_name_;
  std::string dir_;
  std::string bootstrap_;
  std::unique_ptr<chaos::ChildProcess> kafka_;
  std::unique_ptr<Cluster> east_;
  std::unique_ptr<Cluster> west_;
};

// The version histories of a run as a sorted list of branches (each a list of items), and the
// current branch: what "the same branches and the same current branch" means across clusters.
struct Branches {
  std::vector<std::vector<std::pair<int64_t, int64_t>>> all;
  std::vector<std::pair<int64_t, int64_t>> current;
  bool operator==(const Branches&) const = default;
};

inline void PrintTo(const Branches& branches, std::ostream* os) {
  auto print = [os](const std::vector<std::pair<int64_t, int64_t>>& items) {
    *os << "[";
    for (const auto& [event_id, version] : items) *os << "(" << event_id << "," << version << ")";
    *os << "]";
  };
  *os << "branches ";
  for (const auto& items : branches.all) print(items);
  *os << " current ";
  print(branches.current);
}

inline Branches BranchesOf(const VersionHistories& histories) {
  Branches result;
  for (int i = 0; i < histories.histories_size(); ++i) {
    std::vector<std::pair<int64_t, int64_t>> items;
    for (const VersionHistoryItem& item : histories.histories(i).items()) {
      items.emplace_back(item.event_id(), item.version());
    }
    if (i == histories.current_index()) result.current = items;
    result.all.push_back(std::move(items));
  }
  std::sort(result.all.begin(), result.all.end());
  return result;
}

// The current branch's events as "id:TYPE@version" (with "(reapplied)" on copies), one string.
inline std::string EventSummary(const GetHistoryResponse& history) {
  std::string out;
  for (const HistoryEvent& event : history.events()) {
    absl::StrAppend(&out, event.event_id(), ":", EventType_Name(event.event_type()), "@",
                    event.version(), event.has_reapplied_from() ? "(reapplied)" : "", " ");
  }
  return out;
}

}  // namespace xdc
