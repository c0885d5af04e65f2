// ThreadSanitizer annotations for absl::Mutex and absl::CondVar (XDC_TSAN builds only).
//
// Debian's abseil is a prebuilt shared library without ThreadSanitizer instrumentation: its
// Mutex locks with atomics and futexes TSan cannot see, so TSan would find no happens-before
// between two critical sections of one absl::Mutex and report every ABSL_GUARDED_BY member as a
// race. The XDC_TSAN build links every binary with `-Wl,--wrap=<symbol>` for the Mutex and CondVar
// entry points our code calls (CMakeLists.txt), so those calls land here; each wrapper calls the
// real function (`__real_<symbol>`) between the annotations abseil itself makes when it is built
// with TSan (absl/synchronization/mutex.cc, ABSL_TSAN_MUTEX_*): pre/post lock, pre/post unlock.
//
// A wait (Await*, LockWhen*, CondVar::Wait*) is an unlock, then a lock that lasts the whole wait:
// the real call runs between __tsan_mutex_pre_lock and __tsan_mutex_post_lock, where TSan ignores
// memory accesses, because abseil evaluates our absl::Condition callbacks inside it (under the
// lock, but before TSan's view of the lock is acquired). Unlock evaluates waiters' conditions too;
// it runs between pre and post unlock, likewise ignored. So accesses inside condition callbacks
// are not checked; everything else under an absl::Mutex is.
//
// The symbol names carry abseil's inline namespace (`debian3` in Debian 12's 20220623 package);
// with another abseil the --wrap options match nothing and the link fails on `__real_` symbols,
// which is the signal to update both lists.
#include <sanitizer/tsan_interface.h>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace {
using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Time;

constexpr unsigned kRead = __tsan_mutex_read_lock;

void Locked(Mutex* mu, unsigned flags) { __tsan_mutex_post_lock(mu, flags, 0); }
void Unlocking(Mutex* mu, unsigned flags) {
  __tsan_mutex_pre_unlock(mu, flags);
  __tsan_mutex_post_unlock(mu, flags);
}
}  // namespace

// Itanium-mangled names of absl::debian3::Mutex::* and absl::debian3::CondVar::*.
#define XDC_MU(name) _ZN4absl7debian35Mutex##name
#define XDC_CV(name) _ZN4absl7debian37CondVar##name
#define XDC_REAL(sym) XDC_CAT(__real_, sym)
#define XDC_WRAP(sym) XDC_CAT(__wrap_, sym)
#define XDC_CAT(a, b) XDC_CAT2(a, b)
#define XDC_CAT2(a, b) a##b

extern "C" {
// Plain lock and unlock.
void XDC_REAL(XDC_MU(4LockEv))(Mutex* mu);
void XDC_WRAP(XDC_MU(4LockEv))(Mutex* mu) {
  __tsan_mutex_pre_lock(mu, 0);
  XDC_REAL(XDC_MU(4LockEv))(mu);
  Locked(mu, 0);
}
void XDC_REAL(XDC_MU(6UnlockEv))(Mutex* mu);
void XDC_WRAP(XDC_MU(6UnlockEv))(Mutex* mu) {
  __tsan_mutex_pre_unlock(mu, 0);
  XDC_REAL(XDC_MU(6UnlockEv))(mu);
  __tsan_mutex_post_unlock(mu, 0);
}
void XDC_REAL(XDC_MU(10ReaderLockEv))(Mutex* mu);
void XDC_WRAP(XDC_MU(10ReaderLockEv))(Mutex* mu) {
  __tsan_mutex_pre_lock(mu, kRead);
  XDC_REAL(XDC_MU(10ReaderLockEv))(mu);
  Locked(mu, kRead);
}
void XDC_REAL(XDC_MU(12ReaderUnlockEv))(Mutex* mu);
void XDC_WRAP(XDC_MU(12ReaderUnlockEv))(Mutex* mu) {
  __tsan_mutex_pre_unlock(mu, kRead);
  XDC_REAL(XDC_MU(12ReaderUnlockEv))(mu);
  __tsan_mutex_post_unlock(mu, kRead);
}
bool XDC_REAL(XDC_MU(7TryLockEv))(Mutex* mu);
bool XDC_WRAP(XDC_MU(7TryLockEv))(Mutex* mu) {
  __tsan_mutex_pre_lock(mu, __tsan_mutex_try_lock);
  const bool locked = XDC_REAL(XDC_MU(7TryLockEv))(mu);
  __tsan_mutex_post_lock(mu, __tsan_mutex_try_lock | (locked ? 0 : __tsan_mutex_try_lock_failed),
                         0);
  return locked;
}

// Lock when a condition holds.
void XDC_REAL(XDC_MU(8LockWhenERKNS0_9ConditionE))(Mutex* mu, const Condition& c);
void XDC_WRAP(XDC_MU(8LockWhenERKNS0_9ConditionE))(Mutex* mu, const Condition& c) {
  __tsan_mutex_pre_lock(mu, 0);
  XDC_REAL(XDC_MU(8LockWhenERKNS0_9ConditionE))(mu, c);
  Locked(mu, 0);
}
bool XDC_REAL(XDC_MU(19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE))(Mutex* mu,
                                                                             const Condition& c,
                                                                             Duration d);
bool XDC_WRAP(XDC_MU(19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE))(Mutex* mu,
                                                                             const Condition& c,
                                                                             Duration d) {
  __tsan_mutex_pre_lock(mu, 0);
  const bool r = XDC_REAL(XDC_MU(19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE))(mu, c, d);
  Locked(mu, 0);
  return r;
}

// Waits: an unlock, then a lock that spans the real wait.
void XDC_REAL(XDC_MU(5AwaitERKNS0_9ConditionE))(Mutex* mu, const Condition& c);
void XDC_WRAP(XDC_MU(5AwaitERKNS0_9ConditionE))(Mutex* mu, const Condition& c) {
  Unlocking(mu, 0);
  __tsan_mutex_pre_lock(mu, 0);
  XDC_REAL(XDC_MU(5AwaitERKNS0_9ConditionE))(mu, c);
  Locked(mu, 0);
}
bool XDC_REAL(XDC_MU(16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE))(Mutex* mu,
                                                                          const Condition& c,
                                                                          Duration d);
bool XDC_WRAP(XDC_MU(16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE))(Mutex* mu,
                                                                          const Condition& c,
                                                                          Duration d) {
  Unlocking(mu, 0);
  __tsan_mutex_pre_lock(mu, 0);
  const bool r = XDC_REAL(XDC_MU(16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE))(mu, c, d);
  Locked(mu, 0);
  return r;
}
bool XDC_REAL(XDC_MU(17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE))(Mutex* mu,
                                                                       const Condition& c, Time t);
bool XDC_WRAP(XDC_MU(17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE))(Mutex* mu,
                                                                       const Condition& c, Time t) {
  Unlocking(mu, 0);
  __tsan_mutex_pre_lock(mu, 0);
  const bool r = XDC_REAL(XDC_MU(17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE))(mu, c, t);
  Locked(mu, 0);
  return r;
}
void XDC_REAL(XDC_CV(4WaitEPNS0_5MutexE))(CondVar* cv, Mutex* mu);
void XDC_WRAP(XDC_CV(4WaitEPNS0_5MutexE))(CondVar* cv, Mutex* mu) {
  Unlocking(mu, 0);
  __tsan_mutex_pre_lock(mu, 0);
  XDC_REAL(XDC_CV(4WaitEPNS0_5MutexE))(cv, mu);
  Locked(mu, 0);
}
bool XDC_REAL(XDC_CV(15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE))(CondVar* cv, Mutex* mu,
                                                                    Duration d);
bool XDC_WRAP(XDC_CV(15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE))(CondVar* cv, Mutex* mu,
                                                                    Duration d) {
  Unlocking(mu, 0);
  __tsan_mutex_pre_lock(mu, 0);
  const bool r = XDC_REAL(XDC_CV(15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE))(cv, mu, d);
  Locked(mu, 0);
  return r;
}

// Destruction: TSan forgets the mutex, so a new one at the same address starts fresh.
void XDC_REAL(XDC_MU(D1Ev))(Mutex* mu);
void XDC_WRAP(XDC_MU(D1Ev))(Mutex* mu) {
  __tsan_mutex_destroy(mu, 0);
  XDC_REAL(XDC_MU(D1Ev))(mu);
}
}  // extern "C"
