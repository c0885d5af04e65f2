#include "bench/environment.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"

namespace xdc::bench {
namespace {

// Heap of the real broker's JVM: a bit more than the tests' default, for the scaling runs.
constexpr int kRealBrokerHeapMb = 768;

// A topic prefix no earlier run or environment used.
std::string FreshPrefix() {
  static int counter = 0;
  return absl::StrCat("xdcbench-", getpid(), "-", ++counter);
}

}  // namespace

std::string BinDir(const BenchOptions& options) {
  if (!options.bin_dir.empty()) return options.bin_dir;
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : self.parent_path().string();
}

absl::StatusOr<std::unique_ptr<chaos::Broker>> StartSharedBroker(const BenchOptions& options,
                                                                 const std::string& work_dir) {
  if (options.broker != chaos::BrokerKind::kReal) return nullptr;
  chaos::BrokerOptions broker;
  broker.kind = chaos::BrokerKind::kReal;
  broker.work_dir = work_dir;
  broker.heap_mb = kRealBrokerHeapMb;
  return chaos::Broker::Start(broker);
}

absl::StatusOr<std::unique_ptr<chaos::Broker>> StartMockBroker(
    const BenchOptions& options, const std::string& work_dir,
    const std::vector<std::string>& clusters, int32_t shards, const std::string& prefix) {
  chaos::BrokerOptions broker;
  broker.kind = chaos::BrokerKind::kMock;
  broker.work_dir = work_dir;
  broker.clusters = clusters;
  broker.shard_count = shards;
  broker.topic_prefix = prefix;
  broker.mock_binary = BinDir(options) + "/xdc-kafka-mock";
  return chaos::Broker::Start(broker);
}

absl::StatusOr<std::unique_ptr<Environment>> Environment::Create(const BenchOptions& options,
                                                                 chaos::Broker* shared_broker,
                                                                 const std::string& work_dir,
                                                                 int32_t shards) {
  std::unique_ptr<Environment> env(new Environment());
  env->shards_ = shards;
  const std::string prefix = FreshPrefix();
  std::error_code ec;
  std::filesystem::create_directories(work_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("creating ", work_dir, ": ", ec.message()));
  chaos::Broker* broker = shared_broker;
  if (broker == nullptr) {
    absl::StatusOr<std::unique_ptr<chaos::Broker>> mock =
        StartMockBroker(options, work_dir + "/kafka", {kEast, kWest}, shards, prefix);
    if (!mock.ok()) return mock.status();
    env->own_broker_ = *std::move(mock);
    broker = env->own_broker_.get();
  }
  chaos::ClusterSetOptions set;
  set.work_dir = work_dir;
  set.xdcd_binary = BinDir(options) + "/xdcd";
  set.clusters = {kEast, kWest};
  set.shard_count = shards;
  set.bootstrap = broker->bootstrap();
  set.topic_prefix = prefix;
  set.enable_fault_points = false;
  absl::StatusOr<std::unique_ptr<chaos::ClusterSet>> clusters = chaos::ClusterSet::Create(set);
  if (!clusters.ok()) return clusters.status();
  env->clusters_ = *std::move(clusters);
  if (absl::Status s = env->clusters_->StartAll(); !s.ok()) return s;
  if (absl::Status s = env->clusters_->RegisterNamespace(kNamespace, kEast, kNamespaceTimeout);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<NamespaceRecord> record = env->clusters_->Namespace(kEast, kNamespace);
  if (!record.ok()) return record.status();
  env->namespace_id_ = record->id();
  chaos::ClusterSet* raw = env->clusters_.get();
  env->route_ =
      std::make_unique<Route>(std::vector<std::string>{kEast, kWest},
                              [raw](const std::string& name) { return raw->address(name); });
  return env;
}

Environment::~Environment() {
  if (clusters_ != nullptr) (void)clusters_->StopAll();
  if (own_broker_ != nullptr) (void)own_broker_->Stop();
}

std::vector<pid_t> Environment::pids() const {
  return {clusters_->pid(kEast), clusters_->pid(kWest)};
}

}  // namespace xdc::bench
