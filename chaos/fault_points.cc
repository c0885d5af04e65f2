#include "chaos/fault_points.h"

#include <atomic>
#include <cstdlib>
#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"

namespace xdc::fault {
namespace {

struct Registry {
  absl::Mutex mu;
  std::set<std::string, std::less<>> armed ABSL_GUARDED_BY(mu);
  std::atomic<int> armed_count{0};
};

Registry& GetRegistry() {
  static Registry* registry = [] {
    auto* r = new Registry;
    absl::MutexLock lock(
        &r->mu);  // not shared yet; taken so that the analysis sees `armed` guarded
    if (const char* env = std::getenv("XDC_FAULT_POINTS"); env != nullptr) {
      for (absl::string_view name : absl::StrSplit(env, ',', absl::SkipEmpty())) {
        r->armed.insert(std::string(name));
      }
      r->armed_count = static_cast<int>(r->armed.size());
    }
    return r;
  }();
  return *registry;
}

}  // namespace

bool Armed(std::string_view name) {
  Registry& registry = GetRegistry();
  if (registry.armed_count.load(std::memory_order_relaxed) == 0) return false;
  absl::MutexLock lock(&registry.mu);
  return registry.armed.find(name) != registry.armed.end();
}

void Arm(std::string_view name) {
  Registry& registry = GetRegistry();
  absl::MutexLock lock(&registry.mu);
  registry.armed.insert(std::string(name));
  registry.armed_count = static_cast<int>(registry.armed.size());
}

void Disarm(std::string_view name) {
  Registry& registry = GetRegistry();
  absl::MutexLock lock(&registry.mu);
  if (auto it = registry.armed.find(name); it != registry.armed.end()) registry.armed.erase(it);
  registry.armed_count = static_cast<int>(registry.armed.size());
}

std::vector<std::string> ArmedNames() {
  Registry& registry = GetRegistry();
  absl::MutexLock lock(&registry.mu);
  return std::vector<std::string>(registry.armed.begin(), registry.armed.end());  // set: sorted
}

bool IsKnown(std::string_view name) {
  for (std::string_view known : kKnownFaultPoints) {
    if (name == known) return true;
  }
  for (std::string_view prefix : {kApplyHoldPrefix, kPublishProducerFatalPrefix}) {
    if (name.starts_with(prefix) && name.size() > prefix.size()) return true;
  }
  return false;
}

}  // namespace xdc::fault
