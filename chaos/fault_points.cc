#include "chaos/fault_points.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <set>

#include "absl/strings/str_split.h"

namespace xdc::fault {
namespace {

struct Registry {
  std::mutex mu;
  std::set<std::string, std::less<>> armed;  // guarded by mu
  std::atomic<int> armed_count{0};
};

Registry& GetRegistry() {
  static Registry* registry = [] {
    auto* r = new Registry;
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
  std::lock_guard lock(registry.mu);
  return registry.armed.find(name) != registry.armed.end();
}

void Arm(std::string_view name) {
  Registry& registry = GetRegistry();
  std::lock_guard lock(registry.mu);
  registry.armed.insert(std::string(name));
  registry.armed_count = static_cast<int>(registry.armed.size());
}

void Disarm(std::string_view name) {
  Registry& registry = GetRegistry();
  std::lock_guard lock(registry.mu);
  if (auto it = registry.armed.find(name); it != registry.armed.end()) registry.armed.erase(it);
  registry.armed_count = static_cast<int>(registry.armed.size());
}

std::vector<std::string> ArmedNames() {
  Registry& registry = GetRegistry();
  std::lock_guard lock(registry.mu);
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
