#include "admin/initramfs.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <memory>

#include "admin/subprocess.h"
#include "base/strutil.h"
#include "core/keystore.h"
#include "tpm/tpm.h"

namespace hpcs {

namespace {

// Where module-setup.sh puts things in the image (no leading '/': cpio names).
constexpr char kImageUnlocker[] = "usr/sbin/hpcs-unlock";
constexpr char kImageConfig[] = "etc/hpcs-for-luks.ini";
constexpr char kImageBlob[] = "var/lib/hpcs-for-luks/api-key-blob.txt";

std::string JoinRoot(const std::string& root, const std::string& path) {
  if (root.empty() || root == "/") return path;
  return (root.back() == '/' ? root.substr(0, root.size() - 1) : root) + path;
}

bool Exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

using Clock = std::chrono::steady_clock;

// One deadline for all the lsinitrd runs of an image (each decompresses it).
constexpr std::chrono::seconds kImageTimeout{120};
constexpr size_t kMaxListing = 4 * 1024 * 1024;
constexpr size_t kMaxImageConfig = 1024 * 1024;

constexpr std::string_view kKeyDirPrefix = "var/lib/hpcs-for-luks/";

bool IsKeyFileName(std::string_view n) {
  if (n.empty() || n == "." || n == "..") return false;
  for (char c : n) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '/' || c == '\\' || c == '*' || c == '?' || c == '[' ||
        c == ']') {
      return false;
    }
  }
  return true;
}

// Runs lsinitrd with args and the image, within the deadline; the output
// beyond max is dropped (so more than max is seen as max + 1 bytes).
int RunLsinitrd(std::vector<std::string> args, const std::string& image, size_t max, bool secret,
                Clock::time_point deadline, ProcessResult* pr, std::string* err) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  if (left.count() <= 0) {
    if (err) {
      *err =
          "reading '" + image + "' took more than " + std::to_string(kImageTimeout.count()) + " s";
    }
    return -ETIMEDOUT;
  }
  args.insert(args.begin(), "lsinitrd");
  args.push_back(image);
  ProcessOptions o;
  o.timeout = left;
  o.max_output = max + 1;
  o.secret_stdout = secret;
  int r = RunProcess(args, o, pr, err);
  if (r < 0) {
    if (r == -ENOENT && err) *err = "lsinitrd not found (install dracut-core)";
    return r;
  }
  if (pr->exit_status != 0) {
    if (err) *err = "lsinitrd '" + image + "': " + DescribeProcessFailure(*pr);
    return -EIO;
  }
  return 0;
}

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

ImageMember ClassifyImageMember(std::string_view name, std::string* key) {
  if (name == kImageUnlocker) return ImageMember::kUnlocker;
  if (name == kImageConfig) return ImageMember::kConfig;
  if (name == kImageBlob) return ImageMember::kBlob;
  if (!StartsWith(name, kKeyDirPrefix)) return ImageMember::kOther;  // also our directory itself
  std::string_view rest = name.substr(kKeyDirPrefix.size());
  if (rest == "logon" || rest == "user") return ImageMember::kOther;
  for (std::string_view type : {"logon/", "user/"}) {
    if (!StartsWith(rest, type)) continue;
    std::string_view desc = rest.substr(type.size());
    if (!IsKeyFileName(desc)) return ImageMember::kRefused;
    if (IsSkippedKeyFileName(desc)) return ImageMember::kOther;
    if (key) *key = std::string(rest);
    return ImageMember::kKey;
  }
  return ImageMember::kRefused;
}

std::vector<ListedMember> ParseInitramfsListing(std::string_view listing) {
  std::vector<ListedMember> out;
  auto is_mode = [](std::string_view t) {
    if (t.size() != 10 || std::string_view("-dlcbps").find(t[0]) == std::string_view::npos) {
      return false;
    }
    return t.substr(1).find_first_not_of("rwxsStT-") == std::string_view::npos;
  };
  while (!listing.empty()) {
    size_t nl = listing.find('\n');
    std::string_view line = listing.substr(0, nl);
    listing = nl == std::string_view::npos ? std::string_view() : listing.substr(nl + 1);
    // Fields: mode, links, owner, group, size (a device: "major, minor"),
    // month, day, time or year; then one space and the name.
    size_t pos = 0;
    std::vector<std::string_view> fields;
    while (fields.size() < 8 && pos < line.size()) {
      while (pos < line.size() && line[pos] == ' ') ++pos;
      size_t end = line.find(' ', pos);
      if (end == std::string_view::npos) end = line.size();
      fields.push_back(line.substr(pos, end - pos));
      pos = end;
      if (fields.size() == 5 && EndsWith(fields[4], ",")) fields.pop_back();  // the minor follows
    }
    if (fields.size() < 8 || !is_mode(fields[0]) || pos + 1 >= line.size()) continue;
    ListedMember m;
    m.type = fields[0][0];
    std::string_view name = line.substr(pos + 1);
    if (m.type == 'l') name = name.substr(0, name.find(" -> "));
    m.name = std::string(name);
    out.push_back(std::move(m));
  }
  return out;
}

int ReadInitramfs(const std::string& image, InitramfsContents* out, std::string* err) {
  // Absolute, so that no image name is taken for an option of lsinitrd.
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
  auto deadline = Clock::now() + kImageTimeout;
  ProcessResult pr;
  if (int r = RunLsinitrd({}, abs, kMaxListing, false, deadline, &pr, err); r < 0) return r;
  if (pr.out.size() > kMaxListing) {
    if (err) *err = "lsinitrd '" + image + "': the listing exceeds 4 MiB";
    return -EFBIG;
  }
  InitramfsContents c;
  // A member printed to our pipe; false when it is larger than max.
  auto read_member = [&](const std::string& name, size_t max, bool secret, int* rc) {
    *rc = RunLsinitrd({"-f", name}, abs, max, secret, deadline, &pr, err);
    return *rc == 0 && (secret ? pr.secret_out.size() : pr.out.size()) <= max;
  };
  std::vector<ListedMember> members = ParseInitramfsListing(pr.out);
  std::sort(members.begin(), members.end(),
            [](const ListedMember& a, const ListedMember& b) { return a.name < b.name; });
  for (size_t i = 0; i < members.size(); ++i) {
    const ListedMember& m = members[i];
    if (i > 0 && m.name == members[i - 1].name) continue;  // listed twice: read once
    std::string key;
    ImageMember role = ClassifyImageMember(m.name, &key);
    bool regular = m.type == '-';
    int rc = 0;
    switch (role) {
      case ImageMember::kOther:
        break;
      case ImageMember::kRefused:
        c.refused.push_back(m.name);
        break;
      case ImageMember::kUnlocker:
        c.has_unlocker = regular || m.type == 'l';
        break;
      case ImageMember::kConfig:
        if (regular && read_member(m.name, kMaxImageConfig, true, &rc)) {
          c.config = std::move(pr.secret_out);
        }
        break;
      case ImageMember::kBlob:
        if (regular && read_member(m.name, kMaxSealedBlobSize, false, &rc)) {
          c.tpm_blob = std::move(pr.out);
        }
        break;
      case ImageMember::kKey: {
        // Present even when unreadable (a link, too large): it differs. As
        // in a key directory, what is neither file nor link is no key.
        if (!regular && m.type != 'l') break;
        std::string ct;
        if (regular && read_member(m.name, kMaxWrappedKeySize, false, &rc)) {
          ParseWrappedKeyText(pr.out, m.name, &ct, nullptr);
        }
        c.keys[key] = ct;
        break;
      }
    }
    if (rc < 0) return rc;
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
  if (host.auth != image.auth) d.push_back("[KP] auth");
  if (host.api_key_from_tpm != image.api_key_from_tpm || !host.api_key.Equals(image.api_key)) {
    d.push_back("[KP] api_key");
  }
  cmp(host.trusted_profile.id, image.trusted_profile.id, "[KP] trusted_profile_id");
  cmp(host.trusted_profile.crn, image.trusted_profile.crn, "[KP] trusted_profile_crn");
  cmp(host.metadata_endpoint_url, image.metadata_endpoint_url, "[KP] metadata_endpoint_url");
  cmp(host.tpm2_tcti, image.tpm2_tcti, "[HFL] tpm2_tcti");
  if (host.allow_boot_endpoints != image.allow_boot_endpoints) {
    d.push_back("[HFL] allow_boot_endpoints");
  }
  return d;
}

}  // namespace hpcs
