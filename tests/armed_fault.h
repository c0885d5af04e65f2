// A fault point armed for a scope (tests only): fault points are per process, so a failing
// assertion must not leave one armed for the tests that follow.
#pragma once

#include <string>
#include <string_view>

#include "chaos/fault_points.h"

namespace xdc {

class ArmedFault {
 public:
  explicit ArmedFault(std::string_view name) : name_(name) { fault::Arm(name_); }
  ~ArmedFault() { fault::Disarm(name_); }
  ArmedFault(const ArmedFault&) = delete;
  ArmedFault& operator=(const ArmedFault&) = delete;

 private:
  const std::string name_;
};

}  // namespace xdc
