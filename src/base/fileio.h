// File helpers with the rules of STYLE.md: O_CLOEXEC, regular files only,
// sizes capped, atomic writes (temp file, fsync, rename) with an explicit mode.
#ifndef HPCS_BASE_FILEIO_H_
#define HPCS_BASE_FILEIO_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "base/secret.h"

namespace hpcs {

// The cap for a small text file read whole (the kernel command line,
// /proc/meminfo): far more than they hold, little enough to keep in memory.
// Files with a cap of their own: the config (config.cc), a wrapped key
// (keystore.cc), a sealed API key (kMaxSealedBlobSize, tpm/tpm.h).
inline constexpr size_t kMaxSmallFileSize = 64 * 1024;

// Reads a regular file (symlinks are followed; FIFOs, devices and directories
// are refused) of at most max_size bytes. *st gets its metadata if non-null.
int ReadRegularFile(const std::string& path, size_t max_size, std::string* out, struct stat* st,
                    std::string* err);
int ReadRegularFileSecret(const std::string& path, size_t max_size, Secret* out, struct stat* st,
                          std::string* err);

// The rule for a file or directory we take instructions from (the config, the
// key directory and its files, the TPM blob): owned by root (or by the user
// running us) and not writable by group or others, else anyone in them could
// redirect the API key or change what is unlocked. -EPERM names the file and
// the fix (chmod, chown) in *err.
int CheckTrusted(const std::string& path, const struct stat& st, std::string* err);
// stat(2)s a directory and applies CheckTrusted; -ENOENT when it is missing.
int CheckTrustedDir(const std::string& path, std::string* err);

// ReadRegularFile for a file we take instructions from: it must pass
// CheckTrusted, and with Follow::kNo a symbolic link is refused (O_NOFOLLOW).
enum class Follow { kYes, kNo };
int ReadTrustedFile(const std::string& path, size_t max_size, Follow follow, std::string* out,
                    struct stat* st, std::string* err);

// Writes data to path atomically with the given mode: a temporary file in the
// same directory, fsync, rename, fsync of the directory.
int WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode, std::string* err);

// Reads all of a file descriptor (stdin) up to max_size bytes.
int ReadAllFd(int fd, size_t max_size, Secret* out, std::string* err);
// Writes all of data to fd, retrying short writes.
int WriteAllFd(int fd, std::string_view data, std::string* err);

}  // namespace hpcs

#endif  // HPCS_BASE_FILEIO_H_
