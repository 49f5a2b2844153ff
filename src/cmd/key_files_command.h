// `hpcs-for-luks key-files`: the wrapped-key files of [HFL] key_dir, each
// followed by a NUL (a name may hold any character but '/'), after reading
// every one as hpcs-unlock does (keystore.h: trusted directories, a trusted
// regular file that is no symbolic link, a wrapped key inside). The dracut
// module packs exactly these, so that it never makes a trusted root-owned
// copy of a file the binaries would refuse.
#ifndef HPCS_CMD_KEY_FILES_COMMAND_H_
#define HPCS_CMD_KEY_FILES_COMMAND_H_

#include "cmd/cli_verbs.h"

namespace hpcs {

// 0 listed; 1 a directory or a file refused (logged, naming it and the fix),
// and then nothing is listed.
int KeyFilesCommand(Context& ctx);

}  // namespace hpcs

#endif  // HPCS_CMD_KEY_FILES_COMMAND_H_
