// The initramfs images the next boot may use, and what our dracut module
// (dracut/99hpcs) put into one: the unlocker, the config and the wrapped
// keys, at the fixed places module-setup.sh uses. Images are read with
// dracut's lsinitrd, which knows every compression dracut writes.
#ifndef HPCS_ADMIN_INITRAMFS_H_
#define HPCS_ADMIN_INITRAMFS_H_

#include <map>
#include <optional>
#include <string>
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
};

// Unpacks our files from the image into a private temporary directory
// (removed again) and reads them. -ENOENT: lsinitrd is not installed.
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
