#include "base/secret.h"

#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include <utility>

namespace hpcs {
namespace {

SecretReleaseObserver g_release_observer = nullptr;

// The pages that hold live Secrets' blocks, with how many blocks each: mlock
// and munlock work on whole pages, so a block's pages are unlocked only when
// no other live block is on them, and never once LockAllMemory has locked
// everything (munlock would undo that for the range). One lock for the
// threads (an unseal runs in a worker); never destroyed, as a static Secret
// may outlive it.
class PageLocks {
 public:
  static PageLocks& Get() {
    static auto* locks = new PageLocks;
    return *locks;
  }

  // Best effort: RLIMIT_MEMLOCK may refuse; mlockall() on the unlock path
  // covers that case.
  void Lock(const unsigned char* p, size_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    for (uintptr_t page = First(p); page < End(p, n); page += page_) ++count_[page];
    (void)mlock(p, n);
  }

  void Unlock(const unsigned char* p, size_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    for (uintptr_t page = First(p); page < End(p, n); page += page_) {
      auto it = count_.find(page);
      if (it == count_.end() || --it->second > 0) continue;
      count_.erase(it);
      if (!all_locked_) (void)munlock(reinterpret_cast<void*>(page), page_);
    }
  }

  void SetAllLocked(bool all) {
    std::lock_guard<std::mutex> lock(mu_);
    all_locked_ = all;
  }

 private:
  uintptr_t First(const unsigned char* p) const {
    return reinterpret_cast<uintptr_t>(p) & ~(page_ - 1);
  }
  uintptr_t End(const unsigned char* p, size_t n) const {
    return (reinterpret_cast<uintptr_t>(p) + n + page_ - 1) & ~(page_ - 1);
  }

  const uintptr_t page_ = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  std::mutex mu_;
  std::unordered_map<uintptr_t, size_t> count_;
  bool all_locked_ = false;
};

// Gives a block back; the caller has wiped it.
void Release(unsigned char* p, size_t cap) {
  if (g_release_observer) g_release_observer(p, cap);
  PageLocks::Get().Unlock(p, cap);
  free(p);
}

}  // namespace

void SetSecretReleaseObserverForTesting(SecretReleaseObserver observer) {
  g_release_observer = observer;
}

void Wipe(void* p, size_t len) {
  if (p && len) explicit_bzero(p, len);
}

void DisableCoreDumps() {
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  struct rlimit none {
    0, 0
  };
  setrlimit(RLIMIT_CORE, &none);
}

int LockAllMemory() {
  if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 &&
      mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
    return -errno;
  }
  PageLocks::Get().SetAllLocked(true);
  return 0;
}

void UnlockAllMemoryForTesting() {
  PageLocks::Get().SetAllLocked(false);
  munlockall();
}

Secret::Secret(size_t size) {
  Reserve(size);
  size_ = size;
}

Secret::Secret(const void* data, size_t size) { Append(data, size); }

Secret::~Secret() { Clear(); }

Secret::Secret(Secret&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      cap_(std::exchange(o.cap_, 0)) {}

Secret& Secret::operator=(Secret&& o) noexcept {
  if (this != &o) {
    Clear();
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    cap_ = std::exchange(o.cap_, 0);
  }
  return *this;
}

void Secret::Reserve(size_t cap) {
  if (cap <= cap_) return;
  size_t new_cap = cap_ ? cap_ : 64;
  while (new_cap < cap) new_cap *= 2;
  // calloc: a fresh block never shows old heap contents through data().
  auto* p = static_cast<unsigned char*>(calloc(1, new_cap));
  if (!p) throw std::bad_alloc();
  PageLocks::Get().Lock(p, new_cap);
  if (data_) {
    memcpy(p, data_, size_);
    Wipe(data_, cap_);
    Release(data_, cap_);
  }
  data_ = p;
  cap_ = new_cap;
}

void Secret::Append(const void* p, size_t n) {
  if (n == 0) return;
  Reserve(size_ + n);
  memcpy(data_ + size_, p, n);
  size_ += n;
}

void Secret::Truncate(size_t n) {
  if (n >= size_) return;
  Wipe(data_ + n, size_ - n);
  size_ = n;
}

void Secret::Clear() {
  if (data_) {
    Wipe(data_, cap_);
    Release(data_, cap_);
  }
  data_ = nullptr;
  size_ = cap_ = 0;
}

bool Secret::Equals(const Secret& o) const {
  if (size_ != o.size_) return false;
  unsigned char acc = 0;
  for (size_t i = 0; i < size_; ++i) acc |= data_[i] ^ o.data_[i];
  return acc == 0;
}

}  // namespace hpcs
