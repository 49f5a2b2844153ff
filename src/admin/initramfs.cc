#include "admin/initramfs.h"

#include <dirent.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "admin/subprocess.h"
#include "base/fileio.h"
#include "core/keystore.h"
#include "tpm/tpm.h"

namespace hpcs {

namespace {

// Where module-setup.sh puts things in the image (no leading '/': cpio names).
constexpr char kImageUnlocker[] = "usr/sbin/hpcs-unlock";
constexpr char kImageConfig[] = "etc/hpcs-for-luks.ini";
constexpr char kImageKeyDir[] = "var/lib/hpcs-for-luks";
constexpr char kImageBlob[] = "var/lib/hpcs-for-luks/api-key-blob.txt";

std::string JoinRoot(const std::string& root, const std::string& path) {
  if (root.empty() || root == "/") return path;
  return (root.back() == '/' ? root.substr(0, root.size() - 1) : root) + path;
}

bool Exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

int RemoveEntry(const char* path, const struct stat*, int, struct FTW*) {
  remove(path);
  return 0;
}

// A private directory for the unpacked files, removed with everything in it.
class TempDir {
 public:
  int Create(std::string* err) {
    const char* tmpdir = getenv("TMPDIR");
    for (const char* base : {"/run", tmpdir, "/tmp"}) {
      if (!base || access(base, W_OK) != 0) continue;
      std::string tmpl = std::string(base) + "/hpcs-report.XXXXXX";
      if (mkdtemp(tmpl.data())) {
        path_ = tmpl;
        return 0;
      }
    }
    int e = errno;
    if (err) *err = std::string("cannot create a temporary directory: ") + strerror(e);
    return -e;
  }
  ~TempDir() {
    if (!path_.empty()) nftw(path_.c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

std::string NewestKernel(const std::vector<std::string>& versions) {
  std::string best;
  for (const auto& v : versions) {
    if (best.empty() || strverscmp(v.c_str(), best.c_str()) > 0) best = v;
  }
  return best;
}

std::vector<std::string> InstalledKernels(const std::string& root) {
  std::vector<std::string> out;
  for (const char* dir : {"/lib/modules", "/usr/lib/modules"}) {
    std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(JoinRoot(root, dir).c_str()), closedir);
    if (!d) continue;
    while (struct dirent* e = readdir(d.get())) {
      std::string name = e->d_name;
      if (name[0] == '.') continue;
      std::string path = JoinRoot(root, std::string(dir) + "/" + name);
      struct stat st;
      if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) &&
          std::find(out.begin(), out.end(), name) == out.end()) {
        out.push_back(name);
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string InitramfsPathForKernel(const std::string& root, const std::string& kernel) {
  std::string debian = "/boot/initrd.img-" + kernel;
  std::string dracut = "/boot/initramfs-" + kernel + ".img";
  if (Exists(JoinRoot(root, debian))) return JoinRoot(root, debian);
  if (Exists(JoinRoot(root, dracut))) return JoinRoot(root, dracut);
  return JoinRoot(root, debian);
}

std::vector<InitramfsImage> FindInitramfsImages(const std::string& root,
                                                const std::string& running_kernel) {
  std::vector<InitramfsImage> out;
  auto add = [&](const std::string& kernel, const char* role) {
    if (kernel.empty()) return;
    for (auto& i : out) {
      if (i.kernel == kernel) {
        i.roles.push_back(role);
        return;
      }
    }
    InitramfsImage i;
    i.kernel = kernel;
    i.path = InitramfsPathForKernel(root, kernel);
    i.exists = Exists(i.path);
    i.roles.push_back(role);
    out.push_back(std::move(i));
  };
  add(running_kernel, "running");
  add(NewestKernel(InstalledKernels(root)), "newest");
  return out;
}

int ReadKeyDirectory(const std::string& key_dir, std::map<std::string, std::string>* out,
                     std::string* err) {
  std::vector<StoredKey> stored;
  if (int r = ListStoredKeys(key_dir, &stored, nullptr, err); r < 0) return r;
  std::map<std::string, std::string> keys;
  for (const auto& k : stored) {
    std::string ct;
    // An unreadable file counts as present with no content: it differs.
    ReadWrappedKey(k.path, &ct, nullptr);
    keys[std::string(KeyTypeName(k.type)) + "/" + k.desc] = ct;
  }
  *out = std::move(keys);
  return 0;
}

int ReadInitramfs(const std::string& image, InitramfsContents* out, std::string* err) {
  std::string abs = image;
  if (!abs.empty() && abs[0] != '/') {
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd)) abs = std::string(cwd) + "/" + abs;
  }
  struct stat st;
  if (stat(abs.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    int e = errno ? errno : EINVAL;
    if (err) *err = "'" + image + "' is not a readable file";
    return -e;
  }
  TempDir tmp;
  if (int r = tmp.Create(err); r < 0) return r;
  ProcessOptions o;
  o.cwd = tmp.path();
  ProcessResult pr;
  int r = RunProcess(
      {"lsinitrd", "--unpack", abs, kImageConfig, std::string(kImageKeyDir) + "/*", kImageUnlocker},
      o, &pr, err);
  if (r < 0) {
    if (r == -ENOENT && err) *err = "lsinitrd not found (install dracut-core)";
    return r;
  }
  if (pr.exit_status != 0) {
    if (err) *err = "lsinitrd '" + image + "': " + DescribeProcessFailure(pr);
    return -EIO;
  }
  InitramfsContents c;
  std::string base = tmp.path() + "/";
  c.has_unlocker = Exists(base + kImageUnlocker);
  Secret config;
  if (ReadRegularFileSecret(base + kImageConfig, 1024 * 1024, &config, nullptr, nullptr) == 0) {
    c.config = std::move(config);
  }
  if (int kr = ReadKeyDirectory(base + kImageKeyDir, &c.keys, err); kr < 0) return kr;
  std::string blob;
  if (ReadRegularFile(base + kImageBlob, kMaxSealedBlobSize, &blob, nullptr, nullptr) == 0) {
    c.tpm_blob = std::move(blob);
  }
  *out = std::move(c);
  return 0;
}

std::vector<std::string> ConfigDifferences(const Config& host, const Config& image) {
  std::vector<std::string> d;
  auto cmp = [&](const std::string& a, const std::string& b, const char* name) {
    if (a != b) d.push_back(name);
  };
  cmp(host.endpoint_url, image.endpoint_url, "[KP] endpoint_url (or region)");
  cmp(host.iam_endpoint_url, image.iam_endpoint_url, "[KP] iam_endpoint_url");
  cmp(host.service_instance_id, image.service_instance_id, "[KP] service_instance_id");
  cmp(host.default_crk_uuid, image.default_crk_uuid, "[KP] default_crk_uuid");
  if (host.api_key_from_tpm != image.api_key_from_tpm || !host.api_key.Equals(image.api_key)) {
    d.push_back("[KP] api_key");
  }
  cmp(host.tpm2_tcti, image.tpm2_tcti, "[HFL] tpm2_tcti");
  if (host.allow_boot_endpoints != image.allow_boot_endpoints) {
    d.push_back("[HFL] allow_boot_endpoints");
  }
  return d;
}

}  // namespace hpcs
