#include "admin/rewrap.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "admin/ini_edit.h"
#include "base/error.h"
#include "base/fd.h"
#include "base/fileio.h"
#include "base/strutil.h"
#include "kp/kp_keys.h"
#include "tpm/tpm.h"

namespace hpcs {

namespace {

// The key directory's keys with their ciphertexts; unreadable ones get an
// error outcome and an empty ciphertext.
int LoadKeys(const std::string& key_dir, std::vector<RewrapOutcome>* outcomes,
             std::vector<std::string>* ciphertexts, std::string* err) {
  std::vector<StoredKey> stored;
  if (int r = ListStoredKeys(key_dir, &stored, nullptr, err); r < 0) return r;
  outcomes->assign(stored.size(), {});
  ciphertexts->assign(stored.size(), "");
  for (size_t i = 0; i < stored.size(); ++i) {
    RewrapOutcome& o = (*outcomes)[i];
    o.key = stored[i];
    if (int r = ReadWrappedKey(o.key.path, &(*ciphertexts)[i], &o.error); r < 0) o.result = r;
  }
  return 0;
}

std::vector<KpCall*> Batch(std::vector<KpCall>& calls) {
  std::vector<KpCall*> b;
  for (auto& c : calls) {
    if (!c.path.empty()) b.push_back(&c);
  }
  return b;
}

}  // namespace

int RewrapKeys(KpClient& kp, const std::string& key_dir, const std::string& crk,
               std::vector<RewrapOutcome>* outcomes, std::string* err) {
  std::vector<RewrapOutcome> out;
  std::vector<std::string> old_ct;
  if (int r = LoadKeys(key_dir, &out, &old_ct, err); r < 0) return r;
  std::vector<KpCall> calls(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].result == 0) calls[i] = MakeRewrapCall(crk, old_ct[i]);
  }
  std::vector<std::string> new_ct(out.size());
  kp.Run(Batch(calls), [&](KpCall& call) {
    size_t i = static_cast<size_t>(&call - calls.data());
    RewrapOutcome& o = out[i];
    RewrapResult rr;
    std::string why;
    if (int r = ParseRewrap(call, &rr, &why); r < 0) {
      o.result = r;
      o.error = "cannot rewrap '" + o.key.path + "': " + why;
      return;
    }
    o.old_version = rr.key_version;
    o.new_version = rr.rewrapped_key_version;
    if (!rr.key_version.empty() && rr.key_version == rr.rewrapped_key_version) return;
    new_ct[i] = std::move(rr.ciphertext);
  });
  // Before a file is replaced, the KMS must open its new ciphertext: a
  // second rewrap proves it without the plaintext leaving the KMS.
  std::vector<KpCall> checks(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (!new_ct[i].empty()) checks[i] = MakeRewrapCall(crk, new_ct[i]);
  }
  kp.Run(Batch(checks), [&](KpCall& call) {
    size_t i = static_cast<size_t>(&call - checks.data());
    RewrapOutcome& o = out[i];
    RewrapResult rr;
    std::string why;
    if (ParseRewrap(call, &rr, &why) < 0) {
      o.result = -EPROTO;
      o.error = "the rewrapped '" + o.key.path + "' does not open (left as it was): " + why;
    } else if (!o.new_version.empty() && rr.key_version != o.new_version) {
      o.result = -EPROTO;
      o.error = "the rewrapped '" + o.key.path + "' is of key version " + rr.key_version +
                ", not " + o.new_version + " (left as it was)";
    }
  });
  for (size_t i = 0; i < out.size(); ++i) {
    RewrapOutcome& o = out[i];
    if (o.result < 0 || new_ct[i].empty()) continue;
    std::string now, why;
    if (ReadWrappedKey(o.key.path, &now, &why) < 0 || now != old_ct[i]) {
      o.result = -EAGAIN;
      o.error = "'" + o.key.path + "' changed while it was being rewrapped; left as it is";
    } else if (int w = WriteWrappedKey(o.key.path, new_ct[i], &why); w < 0) {
      o.result = w;
      o.error = why;
    } else {
      o.changed = true;
    }
  }
  *outcomes = std::move(out);
  return 0;
}

int FileOps::Write(const std::string& path, std::string_view data, mode_t mode, std::string* err) {
  return WriteFileAtomic(path, data, mode, err);
}

int FileOps::Link(const std::string& from, const std::string& to) {
  return link(from.c_str(), to.c_str()) == 0 ? 0 : -errno;
}

int FileOps::Rename(const std::string& from, const std::string& to) {
  return rename(from.c_str(), to.c_str()) == 0 ? 0 : -errno;
}

int FileOps::Unlink(const std::string& path) {
  return unlink(path.c_str()) == 0 || errno == ENOENT ? 0 : -errno;
}

int FileOps::SyncDir(const std::string& dir) {
  Fd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return -errno;
  return fsync(fd.get()) == 0 ? 0 : -errno;
}

FileOps& FileOps::Real() {
  static FileOps ops;
  return ops;
}

namespace {

using File = StagedFiles::File;

constexpr char kJournalName[] = ".move-journal";
constexpr char kJournalHeader[] = "hpcs-for-luks rewrap --to-crk journal 1\n";

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
}

// `.<name><suffix>` beside path.
std::string Beside(const std::string& path, const char* suffix) {
  size_t slash = path.rfind('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  return (slash == std::string::npos ? "" : path.substr(0, slash + 1)) + "." + base + suffix;
}
std::string StagedName(const std::string& path) { return Beside(path, ".staged"); }
std::string OldName(const std::string& path) { return Beside(path, ".old"); }

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

std::string Errno(int r) { return strerror(-r); }

void SyncDirs(const std::vector<File>& files, FileOps& ops) {
  std::vector<std::string> dirs;
  for (const auto& f : files) {
    std::string d = DirOf(f.path);
    if (std::find(dirs.begin(), dirs.end(), d) == dirs.end()) dirs.push_back(d);
  }
  for (const auto& d : dirs) ops.SyncDir(d);
}

// The journal's states: staging (no file renamed yet: a recovery removes the
// staged files), commit (a recovery renames the rest), rollback (a recovery
// puts the rest back).
enum class State { kStaging, kCommit, kRollback };
constexpr const char* kStateNames[] = {"staging", "commit", "rollback"};

std::string JournalText(const std::vector<File>& files, State state) {
  std::string text = kJournalHeader;
  text += std::string(kStateNames[static_cast<int>(state)]) + "\n";
  for (const auto& f : files) text += std::string(f.had_old ? "1 " : "0 ") + f.path + "\n";
  return text;
}

int ParseJournal(const std::string& path, std::string_view text, std::vector<File>* files,
                 State* state, std::string* err) {
  auto bad = [&] {
    return Fail(err, -EBADMSG, "'" + path + "' is not a journal of rewrap --to-crk");
  };
  if (!text.starts_with(kJournalHeader)) return bad();
  text.remove_prefix(strlen(kJournalHeader));
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) return bad();
    lines.push_back(text.substr(0, nl));
    text.remove_prefix(nl + 1);
  }
  if (lines.empty()) return bad();
  auto name = std::find(std::begin(kStateNames), std::end(kStateNames), lines[0]);
  if (name == std::end(kStateNames)) return bad();
  *state = static_cast<State>(name - std::begin(kStateNames));
  files->clear();
  for (size_t i = 1; i < lines.size(); ++i) {
    std::string_view l = lines[i];
    if (l.size() < 3 || (l[0] != '0' && l[0] != '1') || l[1] != ' ' || l[2] != '/') return bad();
    files->push_back({std::string(l.substr(2)), l[0] == '1'});
  }
  return 0;
}

// The end of a commit, or of its rollback: the old contents and the journal
// removed, after the directories were synced.
int Finish(const std::string& journal, const std::vector<File>& files, FileOps& ops) {
  SyncDirs(files, ops);
  for (const auto& f : files) ops.Unlink(OldName(f.path));
  SyncDirs(files, ops);
  int r = ops.Unlink(journal);
  ops.SyncDir(DirOf(journal));
  return r;
}

// Puts back every file as it was: the old content from `.<name>.old`, a file
// that did not exist removed. `mark`: record first, in the journal, that this
// is a rollback (a crash in it then finishes the rollback, not the commit);
// without that record nothing is put back.
int RollBack(const std::string& journal, const std::vector<File>& files, bool mark, FileOps& ops,
             std::string* err) {
  std::string why;
  if (mark) {
    if (int r = ops.Write(journal, JournalText(files, State::kRollback), 0600, &why); r < 0) {
      return Fail(err, r, "cannot record the rollback in '" + journal + "' (" + why + ")");
    }
  }
  for (auto it = files.rbegin(); it != files.rend(); ++it) {
    std::string old = OldName(it->path);
    if (!it->had_old) {
      if (int r = ops.Unlink(it->path); r < 0) {
        return Fail(err, r, "cannot remove '" + it->path + "': " + Errno(r));
      }
    } else if (Exists(old)) {
      if (int r = ops.Rename(old, it->path); r < 0) {
        return Fail(err, r, "cannot put back '" + it->path + "' from '" + old + "': " + Errno(r));
      }
      ops.Unlink(old);  // still there when it was the same file
    }
    ops.Unlink(StagedName(it->path));
  }
  return Finish(journal, files, ops);
}

// Renames every staged file still there into place, in order; on a failure
// rolls back. *rolled_back says which.
int RollForward(const std::string& journal, const std::vector<File>& files, FileOps& ops,
                bool* rolled_back, std::string* err) {
  *rolled_back = false;
  for (const auto& f : files) {
    std::string staged = StagedName(f.path);
    if (!Exists(staged)) continue;  // renamed before
    if (int r = ops.Rename(staged, f.path); r < 0) {
      std::string failed = "cannot put '" + f.path + "' in place: " + Errno(r);
      std::string why;
      if (RollBack(journal, files, true, ops, &why) < 0) {
        return Fail(
            err, r,
            failed + "; putting the other files back failed too: " + why +
                "; run the same command again: it finishes or undoes the change (journal '" +
                journal + "')");
      }
      *rolled_back = true;
      return Fail(err, r, failed + "; every file was put back as it was");
    }
  }
  Finish(journal, files, ops);
  return 0;
}

}  // namespace

StagedFiles::StagedFiles(std::string journal_dir, FileOps* ops)
    : journal_dir_(std::move(journal_dir)), ops_(ops) {}

StagedFiles::~StagedFiles() { Discard(); }

int StagedFiles::Stage(const std::string& path, std::string_view data, mode_t mode,
                       std::string* err) {
  std::error_code ec;
  std::string abs = std::filesystem::absolute(path, ec).lexically_normal();
  if (ec || abs.find('\n') != std::string::npos) {
    return Fail(err, -EINVAL, "cannot stage '" + path + "': not a usable file name");
  }
  std::string journal = journal_dir_ + "/" + kJournalName, why;
  if (files_.empty() && Exists(journal)) {
    return Fail(err, -EBUSY,
                "'" + journal +
                    "' is the journal of an interrupted rewrap --to-crk; run rewrap "
                    "first, it finishes or undoes it");
  }
  // Listed before it is made, so that a recovery removes it.
  std::vector<File> listed = files_;
  listed.push_back({abs, false});
  if (int r = ops_->Write(journal, JournalText(listed, State::kStaging), 0600, &why); r < 0) {
    return Fail(err, r, "cannot write the journal: " + why);
  }
  journal_written_ = true;
  std::string staged = StagedName(abs), old = OldName(abs);
  if (int r = ops_->Write(staged, data, mode, err); r < 0) return r;
  File f{abs, true};
  int r = ops_->Unlink(old);
  if (r == 0) r = ops_->Link(abs, old);
  if (r == -ENOENT) {
    f.had_old = false;
  } else if (r < 0) {
    ops_->Unlink(staged);
    return Fail(err, r, "cannot keep the old '" + abs + "' as '" + old + "': " + Errno(r));
  }
  files_.push_back(std::move(f));
  return 0;
}

int StagedFiles::Commit(std::string* err) {
  if (files_.empty()) return 0;
  std::string journal = journal_dir_ + "/" + kJournalName, why;
  SyncDirs(files_, *ops_);  // the staged files and the links of the old ones
  if (int r = ops_->Write(journal, JournalText(files_, State::kCommit), 0600, &why); r < 0) {
    Discard();
    return Fail(err, r, "cannot write the journal: " + why + "; nothing was changed");
  }
  std::vector<File> files = std::move(files_);
  files_.clear();
  journal_written_ = false;
  bool rolled_back;
  return RollForward(journal, files, *ops_, &rolled_back, err);
}

void StagedFiles::Discard() {
  for (const auto& f : files_) {
    ops_->Unlink(StagedName(f.path));
    ops_->Unlink(OldName(f.path));
  }
  files_.clear();
  if (journal_written_) ops_->Unlink(journal_dir_ + "/" + kJournalName);
  journal_written_ = false;
}

int RecoverStaged(const std::string& journal_dir, Recovery* what, std::string* err, FileOps* ops) {
  *what = Recovery::kNone;
  std::string journal = journal_dir + "/" + kJournalName, text;
  if (!Exists(journal)) return 0;
  if (int r = ReadTrustedFile(journal, kMaxSmallFileSize, Follow::kNo, &text, nullptr, err);
      r < 0) {
    return r;
  }
  std::vector<File> files;
  State state = State::kCommit;
  if (int r = ParseJournal(journal, text, &files, &state, err); r < 0) return r;
  if (state == State::kStaging) {
    // Nothing was renamed: only the staged files and the links go.
    for (const auto& f : files) ops->Unlink(StagedName(f.path));
    if (int r = Finish(journal, files, *ops); r < 0) {
      return Fail(err, r, "cannot remove '" + journal + "': " + Errno(r));
    }
    *what = Recovery::kRolledBack;
    return 0;
  }
  if (state == State::kRollback) {
    if (int r = RollBack(journal, files, false, *ops, err); r < 0) return r;
    *what = Recovery::kRolledBack;
    return 0;
  }
  bool rolled_back = false;
  int r = RollForward(journal, files, *ops, &rolled_back, err);
  if (r < 0 && !rolled_back) return r;
  *what = rolled_back ? Recovery::kRolledBack : Recovery::kFinished;
  return 0;
}

int StageMovedConfig(const Config& config, const Config* target, const std::string& to_crk,
                     StagedFiles* staged, bool* mode_tightened, std::string* err) {
  Secret text;
  struct stat st {};
  if (int r = ReadRegularFileSecret(config.path, 1024 * 1024, &text, &st, err); r < 0) return r;
  Secret edited;
  bool literal_key = !config.api_key_from_tpm && !config.api_key.empty();
  if (target) {
    Secret other;
    if (int r = ReadRegularFileSecret(target->path, 1024 * 1024, &other, nullptr, err); r < 0) {
      return r;
    }
    Secret kp = IniSectionBody(other.view(), "KP");
    Secret replaced = ReplaceIniSection(text.view(), "KP", kp.view());
    edited = SetIniValue(replaced.view(), "KP", "default_crk_uuid", to_crk);
    literal_key = !target->api_key_from_tpm && !target->api_key.empty();
    if (target->api_key_from_tpm && target->tpm_blob != config.tpm_blob) {
      // The target's sealed API key becomes this machine's.
      Secret blob;
      if (int r = ReadRegularFileSecret(target->tpm_blob, kMaxSealedBlobSize, &blob, nullptr, err);
          r < 0) {
        return r;
      }
      if (int r = staged->Stage(config.tpm_blob, blob.view(), 0600, err); r < 0) return r;
    }
  } else {
    edited = SetIniValue(text.view(), "KP", "default_crk_uuid", to_crk);
  }
  mode_t mode = st.st_mode & 07777;
  // Whoever can read the file has the API key: only its owner may.
  if (literal_key) mode = 0600;
  *mode_tightened = mode != (st.st_mode & 07777);
  return staged->Stage(config.path, edited.view(), mode, err);
}

int MoveKeys(KpClient& from, const std::string& from_crk, KpClient& to, const std::string& to_crk,
             const std::string& key_dir, StagedFiles* staged, std::vector<RewrapOutcome>* outcomes,
             std::string* err) {
  std::vector<RewrapOutcome> out;
  std::vector<std::string> old_ct;
  if (int r = LoadKeys(key_dir, &out, &old_ct, err); r < 0) return r;
  std::vector<Secret> plain(out.size());
  std::vector<KpCall> calls(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].result == 0) calls[i] = KpClient::MakeUnwrapCall(from_crk, old_ct[i]);
  }
  from.Run(Batch(calls), [&](KpCall& call) {
    size_t i = static_cast<size_t>(&call - calls.data());
    UnwrapDetails d;
    std::string why;
    if (int r = ParseUnwrapDetails(call, &d, &why); r < 0) {
      out[i].result = r;
      out[i].error =
          "cannot unwrap '" + out[i].key.path + "' with root key '" + from_crk + "': " + why;
    } else {
      out[i].old_version = d.key_version;
      plain[i] = std::move(d.plaintext);
    }
    call.response.Clear();
  });
  std::vector<std::string> new_ct(out.size());
  std::vector<KpCall> checks(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].result < 0) continue;
    std::string why;
    if (int r = to.Wrap(to_crk, plain[i], &new_ct[i], &why); r < 0) {
      out[i].result = r;
      out[i].error = "cannot wrap '" + out[i].key.path + "' with root key '" + to_crk + "': " + why;
      continue;
    }
    checks[i] = KpClient::MakeUnwrapCall(to_crk, new_ct[i]);
  }
  to.Run(Batch(checks), [&](KpCall& call) {
    size_t i = static_cast<size_t>(&call - checks.data());
    UnwrapDetails d;
    std::string why;
    if (int r = ParseUnwrapDetails(call, &d, &why); r < 0) {
      out[i].result = r;
      out[i].error = "the new wrapping of '" + out[i].key.path + "' does not unwrap: " + why;
    } else if (!d.plaintext.Equals(plain[i])) {
      out[i].result = -EBADMSG;
      out[i].error = "the new wrapping of '" + out[i].key.path + "' unwraps to other bytes";
    } else {
      out[i].new_version = d.key_version;
    }
    call.response.Clear();
  });
  for (auto& p : plain) p.Clear();
  bool all = true;
  for (const auto& o : out) all = all && o.result == 0;
  if (all) {
    for (size_t i = 0; i < out.size(); ++i) {
      std::string text = new_ct[i] + "\n";
      if (int r = staged->Stage(out[i].key.path, text, 0600, &out[i].error); r < 0) {
        out[i].result = r;
        all = false;
      } else {
        out[i].changed = true;
      }
    }
    if (!all) {
      staged->Discard();
      for (auto& o : out) o.changed = false;
    }
  }
  *outcomes = std::move(out);
  return all ? 0 : -1;
}

}  // namespace hpcs
