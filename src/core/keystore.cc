#include "core/keystore.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <tuple>

#include "base/error.h"
#include "base/fileio.h"
#include "base/strutil.h"

namespace hpcs {

namespace {

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};
}  // namespace

bool IsSkippedKeyFileName(std::string_view n) {
  if (n.empty() || n[0] == '.') return true;
  for (std::string_view suffix : {"~", ".tmp", ".swp", ".bak", ".orig", ".rej", ".dpkg-new",
                                  ".dpkg-old", ".dpkg-dist", ".rpmnew", ".rpmsave"}) {
    if (EndsWith(n, suffix)) return true;
  }
  return n.front() == '#' && n.back() == '#';
}

int ListStoredKeys(const std::string& key_dir, std::vector<StoredKey>* out,
                   std::vector<std::string>* skipped, std::string* err) {
  std::vector<StoredKey> keys;
  // Whoever can write to these directories decides what is unlocked.
  if (int r = CheckTrustedDir(key_dir, err); r < 0 && r != -ENOENT) return r;
  for (KeyType type : {KeyType::kLogon, KeyType::kUser}) {
    std::string dir = key_dir + "/" + std::string(KeyTypeName(type));
    if (int r = CheckTrustedDir(dir, err); r == -ENOENT) {
      continue;
    } else if (r < 0) {
      return r;
    }
    std::unique_ptr<DIR, DirCloser> d(opendir(dir.c_str()));
    if (!d) {
      int e = errno;
      return FailErrno(err, e, "cannot read directory '" + dir + "'");
    }
    while (struct dirent* ent = readdir(d.get())) {
      std::string name = ent->d_name;
      if (IsSkippedKeyFileName(name)) continue;
      std::string path = dir + "/" + name;
      // A symbolic link is listed so that reading it fails with the reason.
      struct stat st;
      if (lstat(path.c_str(), &st) != 0 || !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))) {
        if (skipped) skipped->push_back(path + " (not a regular file)");
        continue;
      }
      keys.push_back({type, name, path});
    }
  }
  std::sort(keys.begin(), keys.end(), [](const StoredKey& a, const StoredKey& b) {
    return std::tie(a.type, a.desc) < std::tie(b.type, b.desc);
  });
  *out = std::move(keys);
  return 0;
}

int ParseWrappedKeyText(std::string_view text, const std::string& path, std::string* ciphertext,
                        std::string* err) {
  std::string_view t = Trim(text);
  if (t.empty()) {
    return Fail(err, -EINVAL, "'" + path + "' is empty");
  }
  for (char c : t) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) {
      return Fail(
          err, -EINVAL,
          "'" + path + "' does not hold a wrapped key (unexpected binary or multi-line content)");
    }
  }
  *ciphertext = std::string(t);
  return 0;
}

int ReadWrappedKey(const std::string& path, std::string* ciphertext, std::string* err) {
  std::string text;
  if (int r = ReadTrustedFile(path, kMaxWrappedKeySize, Follow::kNo, &text, nullptr, err); r < 0) {
    return r;
  }
  return ParseWrappedKeyText(text, path, ciphertext, err);
}

int WriteWrappedKey(const std::string& path, std::string_view ciphertext, std::string* err) {
  std::string text(Trim(ciphertext));
  if (text.empty()) {
    if (err) *err = "refusing to write an empty wrapped key to '" + path + "'";
    return -EINVAL;
  }
  text.push_back('\n');
  return WriteFileAtomic(path, text, 0600, err);
}

bool HasLingerMarker(const std::string& key_dir, KeyType type, const std::string& desc) {
  std::string p = key_dir + "/linger/" + std::string(KeyTypeName(type)) + "/" + desc;
  return access(p.c_str(), F_OK) == 0;
}

}  // namespace hpcs
