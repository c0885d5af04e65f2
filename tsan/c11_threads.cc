// C11 threads routed through pthreads, for ThreadSanitizer (XDC_TSAN builds only).
//
// librdkafka creates its threads and locks its mutexes with C11 threads (thrd_create, mtx_lock,
// cnd_wait). glibc implements those by calling its pthread functions internally, past the
// symbols TSan intercepts, and GCC 12's libtsan has no C11 interceptors: librdkafka's threads
// would be unknown to TSan, which crashes (SEGV in its allocator) on their first malloc, and
// librdkafka's locking would order nothing for TSan. This library is loaded before libc, so
// these definitions interpose glibc's and call the intercepted pthread functions instead, which
// is what glibc's own versions do (same mtx_t/cnd_t layout: they wrap the pthread types).
#include <pthread.h>
#include <threads.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>

namespace {

struct Start {
  thrd_start_t func;
  void* arg;
};

void* RunStart(void* p) {
  const Start start = *static_cast<Start*>(p);
  std::free(p);
  return reinterpret_cast<void*>(static_cast<intptr_t>(start.func(start.arg)));
}

int ToThrd(int pthread_error) {
  switch (pthread_error) {
    case 0:
      return thrd_success;
    case ETIMEDOUT:
      return thrd_timedout;
    case EBUSY:
      return thrd_busy;
    case ENOMEM:
      return thrd_nomem;
    default:
      return thrd_error;
  }
}

pthread_mutex_t* Pthread(mtx_t* m) { return reinterpret_cast<pthread_mutex_t*>(m); }
pthread_cond_t* Pthread(cnd_t* c) { return reinterpret_cast<pthread_cond_t*>(c); }

}  // namespace

extern "C" {

int thrd_create(thrd_t* thr, thrd_start_t func, void* arg) {
  auto* start = static_cast<Start*>(std::malloc(sizeof(Start)));
  if (start == nullptr) return thrd_nomem;
  *start = Start{func, arg};
  pthread_t id;
  const int err = pthread_create(&id, nullptr, RunStart, start);
  if (err != 0) {
    std::free(start);
    return err == EAGAIN ? thrd_nomem : thrd_error;
  }
  *thr = id;
  return thrd_success;
}

int thrd_join(thrd_t thr, int* res) {
  void* result = nullptr;
  if (pthread_join(thr, &result) != 0) return thrd_error;
  if (res != nullptr) *res = static_cast<int>(reinterpret_cast<intptr_t>(result));
  return thrd_success;
}

int thrd_detach(thrd_t thr) { return pthread_detach(thr) == 0 ? thrd_success : thrd_error; }

int mtx_lock(mtx_t* m) { return ToThrd(pthread_mutex_lock(Pthread(m))); }
int mtx_trylock(mtx_t* m) { return ToThrd(pthread_mutex_trylock(Pthread(m))); }
int mtx_timedlock(mtx_t* __restrict m, const struct timespec* __restrict ts) {
  return ToThrd(pthread_mutex_timedlock(Pthread(m), ts));
}
int mtx_unlock(mtx_t* m) { return ToThrd(pthread_mutex_unlock(Pthread(m))); }

int cnd_wait(cnd_t* c, mtx_t* m) { return ToThrd(pthread_cond_wait(Pthread(c), Pthread(m))); }
int cnd_timedwait(cnd_t* __restrict c, mtx_t* __restrict m, const struct timespec* __restrict ts) {
  return ToThrd(pthread_cond_timedwait(Pthread(c), Pthread(m), ts));
}
int cnd_signal(cnd_t* c) { return ToThrd(pthread_cond_signal(Pthread(c))); }
int cnd_broadcast(cnd_t* c) { return ToThrd(pthread_cond_broadcast(Pthread(c))); }

}  // extern "C"
