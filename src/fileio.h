// File helpers with the rules of STYLE.md: O_CLOEXEC, regular files only,
// sizes capped, atomic writes (temp file, fsync, rename) with an explicit mode.
#ifndef HPCS_FILEIO_H_
#define HPCS_FILEIO_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <string>
#include <string_view>

#include "secret.h"

namespace hpcs {

// Reads a regular file (symlinks are followed; FIFOs, devices and directories
// are refused) of at most max_size bytes. *st gets its metadata if non-null.
int ReadRegularFile(const std::string& path, size_t max_size, std::string* out, struct stat* st,
                    std::string* err);
int ReadRegularFileSecret(const std::string& path, size_t max_size, Secret* out, struct stat* st,
                          std::string* err);

// Writes data to path atomically with the given mode: a temporary file in the
// same directory, fsync, rename, fsync of the directory.
int WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode, std::string* err);

// Reads all of a file descriptor (stdin) up to max_size bytes.
int ReadAllFd(int fd, size_t max_size, Secret* out, std::string* err);
// Writes all of data to fd, retrying short writes.
int WriteAllFd(int fd, std::string_view data, std::string* err);

}  // namespace hpcs

#endif  // HPCS_FILEIO_H_
