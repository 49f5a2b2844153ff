// /etc/crypttab (crypttab(5)): which volumes the machine opens at boot,
// from which device, with which options. Read by `report` to find the
// volume a wrapped key belongs to.
#ifndef HPCS_CORE_CRYPTTAB_H_
#define HPCS_CORE_CRYPTTAB_H_

#include <string>
#include <string_view>
#include <vector>

namespace hpcs {

inline constexpr char kDefaultCrypttab[] = "/etc/crypttab";

struct CrypttabEntry {
  std::string name;    // the mapping: /dev/mapper/<name>
  std::string source;  // UUID=..., PARTUUID=..., LABEL=..., or a path
  std::string key;     // "none", "-", or a key file
  std::vector<std::string> options;
  int line = 0;

  bool Has(std::string_view option) const;  // "_netdev", "noauto", ...
};

// Parses crypttab text: comments and blank lines skipped, fields split on
// white space, options on commas (an option's "=value" is kept).
std::vector<CrypttabEntry> ParseCrypttab(std::string_view text);

// The device path of a source field: UUID=x -> /dev/disk/by-uuid/x (and
// PARTUUID, LABEL, PARTLABEL likewise); a path as it is.
std::string CrypttabSourcePath(std::string_view source);

}  // namespace hpcs

#endif  // HPCS_CORE_CRYPTTAB_H_
