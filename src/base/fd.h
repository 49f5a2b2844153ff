// The one owner of a file descriptor (STYLE.md: every C handle has an owner):
// it closes the descriptor when it goes out of scope, can be moved but not
// copied, and holds -1 when it owns nothing.
#ifndef HPCS_BASE_FD_H_
#define HPCS_BASE_FD_H_

namespace hpcs {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Close(); }
  Fd(Fd&& other) noexcept : fd_(other.Release()) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  // Gives the descriptor up without closing it (to close(2) it where the
  // result matters, as after writing a file).
  int Release();
  // Closes it now, if there is one; the result of close(2) is not looked at.
  void Close();

 private:
  int fd_ = -1;
};

}  // namespace hpcs

#endif  // HPCS_BASE_FD_H_
