#include "subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "strutil.h"

namespace hpcs {

namespace {

using Clock = std::chrono::steady_clock;

// One end of a pipe, closed when it goes out of scope.
class PipeEnd {
 public:
  PipeEnd() = default;
  explicit PipeEnd(int fd) : fd_(fd) {}
  ~PipeEnd() { Close(); }
  PipeEnd(const PipeEnd&) = delete;
  PipeEnd& operator=(const PipeEnd&) = delete;
  PipeEnd& operator=(PipeEnd&& o) noexcept {
    Close();
    fd_ = o.fd_;
    o.fd_ = -1;
    return *this;
  }
  int get() const { return fd_; }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

int MakePipe(PipeEnd* read_end, PipeEnd* write_end) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -errno;
  *read_end = PipeEnd(fds[0]);
  *write_end = PipeEnd(fds[1]);
  return 0;
}

// In the child, between fork and exec: async-signal-safe calls only.
[[noreturn]] void ExecChild(char* const* argv, const char* cwd, int in, int out, int errfd,
                            int report) {
  if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(errfd, 2) < 0) {
    int e = errno;
    (void)!write(report, &e, sizeof e);
    _exit(127);
  }
  if (cwd && chdir(cwd) != 0) {
    int e = errno;
    (void)!write(report, &e, sizeof e);
    _exit(127);
  }
  signal(SIGPIPE, SIG_DFL);
  execvp(argv[0], argv);
  int e = errno;
  (void)!write(report, &e, sizeof e);
  _exit(127);
}

}  // namespace

int RunProcess(const std::vector<std::string>& argv, const ProcessOptions& options,
               ProcessResult* result, std::string* err) {
  if (argv.empty()) {
    if (err) *err = "no program to run";
    return -EINVAL;
  }
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  PipeEnd in_r, in_w, out_r, out_w, err_r, err_w, rep_r, rep_w;
  int r = 0;
  if ((r = MakePipe(&out_r, &out_w)) < 0 || (r = MakePipe(&err_r, &err_w)) < 0 ||
      (r = MakePipe(&rep_r, &rep_w)) < 0) {
    if (err) *err = std::string("cannot make a pipe: ") + strerror(-r);
    return r;
  }
  if (options.stdin_data) {
    if ((r = MakePipe(&in_r, &in_w)) < 0) {
      if (err) *err = std::string("cannot make a pipe: ") + strerror(-r);
      return r;
    }
  } else {
    in_r = PipeEnd(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (in_r.get() < 0) {
      if (err) *err = std::string("cannot open /dev/null: ") + strerror(errno);
      return -errno;
    }
  }
  const char* cwd = options.cwd.empty() ? nullptr : options.cwd.c_str();
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    if (err) *err = "cannot start '" + argv[0] + "': " + strerror(e);
    return -e;
  }
  if (pid == 0) ExecChild(cargv.data(), cwd, in_r.get(), out_w.get(), err_w.get(), rep_w.get());

  in_r.Close();
  out_w.Close();
  err_w.Close();
  rep_w.Close();
  // The exec failed if the child reports an errno before the pipe closes.
  int exec_errno = 0;
  ssize_t n;
  do {
    n = read(rep_r.get(), &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    if (err) *err = "cannot run '" + argv[0] + "': " + strerror(exec_errno);
    return -exec_errno;
  }

  // A child that exits before reading all of its stdin must not take us
  // with it (SIGPIPE); the write then fails with EPIPE instead.
  struct sigaction ignore {
  }, old_pipe{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, &old_pipe);
  ProcessResult res;
  const Secret* in = options.stdin_data;
  size_t in_off = 0;
  if (in && in->empty()) in_w.Close();
  if (in_w.get() >= 0) fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
  auto deadline = Clock::now() + options.timeout;
  char buf[4096];
  while (out_r.get() >= 0 || err_r.get() >= 0) {
    struct pollfd p[3];
    int np = 0;
    PipeEnd* ends[3];
    for (PipeEnd* e : {&out_r, &err_r}) {
      if (e->get() >= 0) {
        p[np] = {e->get(), POLLIN, 0};
        ends[np++] = e;
      }
    }
    if (in_w.get() >= 0) {
      p[np] = {in_w.get(), POLLOUT, 0};
      ends[np++] = &in_w;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      res.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    int pr = poll(p, static_cast<nfds_t>(np), static_cast<int>(left.count()));
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0) break;
    for (int i = 0; i < np; ++i) {
      if (!p[i].revents) continue;
      if (ends[i] == &in_w) {
        ssize_t w = write(in_w.get(), in->data() + in_off, in->size() - in_off);
        if (w > 0) in_off += static_cast<size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_off == in->size()) in_w.Close();
        continue;
      }
      ssize_t got = read(ends[i]->get(), buf, sizeof buf);
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (got <= 0) {
        ends[i]->Close();
        continue;
      }
      std::string& sink = ends[i] == &out_r ? res.out : res.err;
      size_t room = options.max_output > sink.size() ? options.max_output - sink.size() : 0;
      sink.append(buf, std::min(room, static_cast<size_t>(got)));
    }
  }
  in_w.Close();
  sigaction(SIGPIPE, &old_pipe, nullptr);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) break;
  }
  if (WIFEXITED(status)) {
    res.exit_status = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    res.signal = WTERMSIG(status);
  }
  *result = std::move(res);
  return 0;
}

std::string DescribeProcessFailure(const ProcessResult& r) {
  std::string s;
  if (r.timed_out) {
    s = "did not finish in time (killed)";
  } else if (r.exit_status < 0) {
    s = "killed by signal " + std::to_string(r.signal);
  } else {
    s = "exit status " + std::to_string(r.exit_status);
  }
  std::string_view e = Trim(r.err);
  if (size_t nl = e.rfind('\n'); nl != std::string_view::npos) e = e.substr(nl + 1);
  if (!e.empty()) s += ": " + Printable(e, 200);
  return s;
}

}  // namespace hpcs
