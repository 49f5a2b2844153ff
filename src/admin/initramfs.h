// The initramfs images the next boot may use, and what our dracut module
// (dracut/99hpcs) put into one: the unlocker, the config and the wrapped
// keys, at the fixed places module-setup.sh uses. Images are read with
// dracut's lsinitrd, which knows every compression dracut writes: its
// listing, then each member we need printed to our pipe (`lsinitrd -f`).
// Nothing is unpacked: the member names come from the image, and cpio
// honours ".." and a pattern's '*' matches '/' when it writes files.
#ifndef HPCS_ADMIN_INITRAMFS_H_
#define HPCS_ADMIN_INITRAMFS_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/secret.h"
#include "core/config.h"

namespace hpcs {

struct InitramfsImage {
  std::string path;
  std::string kernel;
  std::vector<std::string> roles;  // "running", "newest"
  bool exists = false;
};

// The newest of some kernel versions (as sort -V orders them); "" if none.
std::string NewestKernel(const std::vector<std::string>& versions);

// The kernels installed under root: the directories in lib/modules.
std::vector<std::string> InstalledKernels(const std::string& root);

// The image of a kernel: /boot/initrd.img-KVER (Debian) if it exists, else
// /boot/initramfs-KVER.img (dracut's default), else the Debian name.
std::string InitramfsPathForKernel(const std::string& root, const std::string& kernel);

// The images of the running kernel and of the newest installed one (one
// entry when they are the same kernel).
std::vector<InitramfsImage> FindInitramfsImages(const std::string& root,
                                                const std::string& running_kernel);

struct InitramfsContents {
  bool has_unlocker = false;                // usr/sbin/hpcs-unlock
  std::optional<Secret> config;             // etc/hpcs-for-luks.ini (may hold an API key)
  std::map<std::string, std::string> keys;  // "user/DESC" -> ciphertext
  std::optional<std::string> tpm_blob;      // var/lib/hpcs-for-luks/api-key-blob.txt
  // Members under var/lib/hpcs-for-luks/ that are not read (as listed):
  // "..", a glob character, a deeper path.
  std::vector<std::string> refused;
};

// What a member of an image is to report, by its name as cpio lists it (no
// leading '/').
enum class ImageMember {
  kOther,     // not ours, or a directory of ours, or a skipped key file name
  kUnlocker,  // usr/sbin/hpcs-unlock
  kConfig,    // etc/hpcs-for-luks.ini
  kBlob,      // var/lib/hpcs-for-luks/api-key-blob.txt
  kKey,       // var/lib/hpcs-for-luks/{logon,user}/<name>: *key = "user/<name>"
  kRefused,   // anything else under var/lib/hpcs-for-luks/
};

// A <name> is one path component, not "." or "..", without control
// characters, backslashes or glob characters (* ? [ ]: cpio matches the
// name given to lsinitrd -f as a pattern), so that it names exactly that
// member. Names IsSkippedKeyFileName skips are kOther, as in a key directory.
ImageMember ClassifyImageMember(std::string_view name, std::string* key);

struct ListedMember {
  char type = 0;  // the first character of its mode: '-', 'd', 'l', 'c', ...
  std::string name;
};

// The members in lsinitrd's listing (cpio's long format: mode, links, owner,
// group, size, date, name, " -> target" for a link); other lines skipped.
// cpio prints names as they are: one with a newline is seen as its first
// line, a name that is then read as a member that is not there (empty).
std::vector<ListedMember> ParseInitramfsListing(std::string_view listing);

// Reads our files of the image: lists its members, then prints each one it
// needs, bounded in size (the config 1 MiB, a key kMaxWrappedKeySize, the
// blob kMaxSealedBlobSize) and all within one deadline. A member that is
// not a regular file, or too large, is read as absent (a key: present, with
// no content). -ENOENT: lsinitrd is not installed.
int ReadInitramfs(const std::string& image, InitramfsContents* out, std::string* err);

// Which of the settings hpcs-unlock uses at boot differ between the host's
// config and the image's ("[KP] default_crk_uuid", ...; values never shown).
// The paths the module rewrites (key_dir, ca_file, tpm_blob) are not compared.
std::vector<std::string> ConfigDifferences(const Config& host, const Config& image);

// The wrapped keys of a key directory, as "user/DESC" -> ciphertext.
int ReadKeyDirectory(const std::string& key_dir, std::map<std::string, std::string>* out,
                     std::string* err);

}  // namespace hpcs

#endif  // HPCS_ADMIN_INITRAMFS_H_
