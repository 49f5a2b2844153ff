// Logging for the two binaries. Library code only logs at debug level; the
// command layer logs once, with context (STYLE.md).
//
// Output goes to stderr. With `kernel_prefix` set (hpcs-unlock), every line
// starts with "<N>" so the journal, reading a service's stderr, keeps the
// priority. When stderr is connected to the journal (JOURNAL_STREAM matches
// stderr) and libsystemd is available, messages go through sd_journal_send
// with structured fields instead.
#ifndef HPCS_BASE_LOG_H_
#define HPCS_BASE_LOG_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hpcs {

enum class LogLevel { kError = 3, kWarning = 4, kNotice = 5, kInfo = 6, kDebug = 7 };

struct LogOptions {
  LogLevel max_level = LogLevel::kInfo;
  bool priority_prefix = false;  // "<3>message" for stderr read by the journal
  std::string program = "hpcs-for-luks";
};

void LogSetup(const LogOptions& options);
bool LogEnabled(LogLevel level);

// Extra journal fields, e.g. {"HPCS_KEY", "user/luks:root"}.
using LogFields = std::vector<std::pair<std::string, std::string>>;

void Log(LogLevel level, std::string_view message, const LogFields& fields = {});

inline void LogError(std::string_view m, const LogFields& f = {}) { Log(LogLevel::kError, m, f); }
inline void LogWarning(std::string_view m, const LogFields& f = {}) {
  Log(LogLevel::kWarning, m, f);
}
inline void LogInfo(std::string_view m, const LogFields& f = {}) { Log(LogLevel::kInfo, m, f); }
inline void LogDebug(std::string_view m, const LogFields& f = {}) {
  if (LogEnabled(LogLevel::kDebug)) Log(LogLevel::kDebug, m, f);
}

}  // namespace hpcs

#endif  // HPCS_BASE_LOG_H_
