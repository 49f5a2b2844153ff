#include "admin/luks.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "admin/subprocess.h"

namespace hpcs {

namespace {

// cryptsetup's exit status for "no key available with this passphrase".
constexpr int kCryptsetupWrongKey = 2;

}  // namespace

int ReadLuksHeader(const std::string& device, LuksHeader* out, std::string* err) {
  struct stat st;
  if (stat(device.c_str(), &st) != 0) {
    int e = errno;
    if (err) *err = "'" + device + "': " + strerror(e);
    return -e;
  }
  ProcessResult r;
  if (int rc =
          RunProcess({"cryptsetup", "luksDump", "--dump-json-metadata", "--", device}, {}, &r, err);
      rc < 0) {
    return rc;
  }
  if (r.exit_status != 0) {
    // cryptsetup says "Device X is not a valid LUKS device." for LUKS1 too
    // (LUKS1 has no JSON metadata); ask it which.
    ProcessResult is2;
    if (RunProcess({"cryptsetup", "isLuks", "--type", "luks2", "--", device}, {}, &is2, nullptr) ==
            0 &&
        is2.exit_status != 0) {
      if (err) *err = "'" + device + "' is not a LUKS2 volume";
      return -EMEDIUMTYPE;
    }
    if (err) *err = "cryptsetup luksDump '" + device + "': " + DescribeProcessFailure(r);
    return -EIO;
  }
  if (int rc = ParseLuks2Metadata(r.out, out, err); rc < 0) {
    if (err) *err = "'" + device + "': " + *err;
    return rc;
  }
  return 0;
}

int TestLuksPassphrase(const std::string& device, int slot, const Secret& passphrase,
                       std::string* err) {
  ProcessOptions o;
  o.stdin_data = &passphrase;
  ProcessResult r;
  if (int rc = RunProcess({"cryptsetup", "open", "--test-passphrase", "--key-slot",
                           std::to_string(slot), "--key-file", "-", "--", device},
                          o, &r, err);
      rc < 0) {
    return rc;
  }
  if (r.exit_status == 0) return 1;
  if (r.exit_status == kCryptsetupWrongKey) return 0;
  if (err)
    *err = "cryptsetup open --test-passphrase '" + device + "': " + DescribeProcessFailure(r);
  return -EIO;
}

}  // namespace hpcs
