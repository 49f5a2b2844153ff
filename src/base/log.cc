#include "base/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "base/strutil.h"

#ifdef HPCS_HAVE_SYSTEMD
#include <systemd/sd-journal.h>
#endif

namespace hpcs {
namespace {

LogOptions g_options;
#ifdef HPCS_HAVE_SYSTEMD
bool g_to_journal = false;
#endif

// True when stderr is the journal stream systemd gave us (sd_journal_stream_fd
// semantics: JOURNAL_STREAM="DEV:INODE" of the stream).
bool StderrIsJournal() {
  const char* e = getenv("JOURNAL_STREAM");
  if (!e) return false;
  unsigned long long dev = 0, ino = 0;
  if (sscanf(e, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st;
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  return st.st_dev == dev && st.st_ino == ino;
}

}  // namespace

void LogSetup(const LogOptions& options) {
  g_options = options;
#ifdef HPCS_HAVE_SYSTEMD
  g_to_journal = StderrIsJournal();
#else
  (void)StderrIsJournal;
#endif
}

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) <= static_cast<int>(g_options.max_level);
}

void Log(LogLevel level, std::string_view raw_message, const LogFields& fields) {
  if (!LogEnabled(level)) return;
  // Messages quote file names and server text: one line each, whatever they hold.
  std::string message = EscapeControls(raw_message);
#ifdef HPCS_HAVE_SYSTEMD
  if (g_to_journal) {
    std::vector<std::string> items;
    items.push_back("MESSAGE=" + message);
    items.push_back("PRIORITY=" + std::to_string(static_cast<int>(level)));
    items.push_back("SYSLOG_IDENTIFIER=" + g_options.program);
    for (const auto& [k, v] : fields) items.push_back(k + "=" + EscapeControls(v));
    std::vector<struct iovec> iov;
    for (auto& s : items) iov.push_back({s.data(), s.size()});
    if (sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) >= 0) return;
  }
#endif
  (void)fields;
  std::string line;
  if (g_options.priority_prefix) {
    line = "<" + std::to_string(static_cast<int>(level)) + ">";
  } else {
    line = g_options.program + ": ";
  }
  line.append(message);
  line.push_back('\n');
  // One write per line so lines from parallel work do not interleave.
  ssize_t unused = write(STDERR_FILENO, line.data(), line.size());
  (void)unused;
}

}  // namespace hpcs
