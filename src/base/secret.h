// Secret: the one buffer type for key bytes, passphrases, API keys and bearer
// tokens. Move-only, locked in memory where the kernel allows it, wiped with
// explicit_bzero before its memory is released or reused. A page is unlocked
// only when no live Secret is left on it, and never after LockAllMemory.
#ifndef HPCS_BASE_SECRET_H_
#define HPCS_BASE_SECRET_H_

#include <cstddef>
#include <span>
#include <string_view>

namespace hpcs {

class Secret {
 public:
  Secret() = default;
  explicit Secret(size_t size);  // zero-filled
  Secret(const void* data, size_t size);
  static Secret FromString(std::string_view s) { return Secret(s.data(), s.size()); }
  ~Secret();

  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  Secret(Secret&& o) noexcept;
  Secret& operator=(Secret&& o) noexcept;

  unsigned char* data() { return data_; }
  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  std::span<const std::byte> bytes() const {
    return {reinterpret_cast<const std::byte*>(data_), size_};
  }
  // A view for APIs that take text (HTTP bodies, headers). Never log it.
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }

  // Appends, growing by reallocation; the old block is wiped before release.
  void Append(const void* p, size_t n);
  void Append(std::string_view s) { Append(s.data(), s.size()); }
  // Shrinks the logical size (the tail is wiped).
  void Truncate(size_t n);
  void Clear();

  // Constant-time comparison of contents.
  bool Equals(const Secret& o) const;

 private:
  void Reserve(size_t cap);
  unsigned char* data_ = nullptr;
  size_t size_ = 0;
  size_t cap_ = 0;
};

// For tests: called with every block a Secret gives back to the heap, just
// before free() (after the wipe), so a test can see that nothing is left in
// it. nullptr (the default): no observer.
using SecretReleaseObserver = void (*)(const unsigned char* block, size_t size);
void SetSecretReleaseObserverForTesting(SecretReleaseObserver observer);

// Wipes len bytes at p in a way the compiler cannot elide.
void Wipe(void* p, size_t len);

// No core file and no ptrace by other users' tools for this process: it is
// about to hold secrets. Both binaries call it first thing.
void DisableCoreDumps();

// mlockall(MCL_CURRENT | MCL_FUTURE), with MCL_ONFAULT where the kernel has
// it (Linux 4.4: pages are locked as they are touched instead of every
// mapping being faulted in up front). hpcs-unlock calls it; -errno when the
// kernel refuses (RLIMIT_MEMLOCK), and then each Secret is still locked.
// From then on a Secret's release unlocks nothing.
int LockAllMemory();
// munlockall(), and Secrets unlock their pages again.
void UnlockAllMemoryForTesting();

}  // namespace hpcs

#endif  // HPCS_BASE_SECRET_H_
