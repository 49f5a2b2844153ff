#include "admin/report.h"

#include <algorithm>

#include "admin/report_checks.h"
#include "base/json.h"
#include "base/strutil.h"

namespace hpcs {

namespace {

cJSON* OptBool(const std::optional<bool>& b) {
  return b ? cJSON_CreateBool(*b) : cJSON_CreateNull();
}

cJSON* OptString(const std::string& s) {
  return s.empty() ? cJSON_CreateNull() : cJSON_CreateString(s.c_str());
}

// A JSON array of make(x) for each x.
template <typename T, typename F>
cJSON* Array(const std::vector<T>& v, F make) {
  cJSON* a = cJSON_CreateArray();
  for (const auto& x : v) cJSON_AddItemToArray(a, make(x));
  return a;
}

cJSON* Strings(const std::vector<std::string>& v) {
  return Array(v, [](const std::string& s) { return cJSON_CreateString(s.c_str()); });
}

void AddString(cJSON* o, const char* name, const std::string& v) {
  cJSON_AddStringToObject(o, name, v.c_str());
}

cJSON* KeyJson(const KeyFacts& k) {
  cJSON* o = cJSON_CreateObject();
  AddString(o, "type", k.type);
  AddString(o, "description", k.description);
  AddString(o, "path", k.path);
  cJSON_AddItemToObject(o, "unwraps", OptBool(k.unwraps));
  cJSON_AddItemToObject(o, "key_version", OptString(k.key_version));
  cJSON_AddItemToObject(o, "current", OptBool(k.current));
  cJSON* vols = cJSON_AddArrayToObject(o, "volumes");
  for (const auto& v : k.volumes) {
    cJSON* vo = cJSON_CreateObject();
    AddString(vo, "name", v.name);
    AddString(vo, "device", v.device);
    cJSON_AddBoolToObject(vo, "netdev", v.netdev);
    cJSON_AddItemToObject(vo, "keyslots",
                          Array(v.keyslots, [](int i) { return cJSON_CreateNumber(i); }));
    cJSON_AddItemToObject(vo, "opens", OptBool(v.opens));
    cJSON_AddItemToArray(vols, vo);
  }
  return o;
}

cJSON* TokenJson(const TokenFacts& t) {
  cJSON* o = cJSON_CreateObject();
  AddString(o, "device", t.device);
  cJSON_AddItemToObject(o, "name", OptString(t.name));
  cJSON_AddNumberToObject(o, "token_id", t.token_id);
  cJSON_AddItemToObject(o, "keyslots",
                        Array(t.keyslots, [](int i) { return cJSON_CreateNumber(i); }));
  AddString(o, "crk", t.crk);
  AddString(o, "instance", t.instance);
  cJSON_AddItemToObject(o, "key_version", OptString(t.key_version));
  cJSON_AddItemToObject(o, "unwraps", OptBool(t.unwraps));
  cJSON_AddItemToObject(o, "current", OptBool(t.current));
  cJSON_AddItemToObject(o, "opens", OptBool(t.opens));
  return o;
}

cJSON* InitramfsJson(const InitramfsFacts& i) {
  cJSON* o = cJSON_CreateObject();
  AddString(o, "path", i.path);
  cJSON_AddItemToObject(o, "kernel", OptString(i.kernel));
  cJSON_AddItemToObject(o, "roles", Strings(i.roles));
  cJSON_AddItemToObject(o, "module", OptBool(i.module));
  cJSON_AddItemToObject(o, "config_matches", OptBool(i.config_matches));
  cJSON_AddItemToObject(o, "keys_missing", Strings(i.keys_missing));
  cJSON_AddItemToObject(o, "keys_removed", Strings(i.keys_removed));
  cJSON_AddItemToObject(o, "keys_differ", Strings(i.keys_differ));
  return o;
}

std::string OverallStatus(const Report& r) {
  Level w = r.Worst();
  return w == Level::kFail ? "fail" : w == Level::kWarn ? "warn" : "ok";
}

}  // namespace

const char* LevelName(Level level) {
  switch (level) {
    case Level::kOk:
      return "ok";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kFail:
      return "fail";
  }
  return "?";
}

void Report::Add(std::string check, std::string subject, Level level, std::string message,
                 std::string remedy) {
  findings.push_back(
      {std::move(check), std::move(subject), level, std::move(message), std::move(remedy)});
}

Level Report::Worst() const {
  Level w = Level::kOk;
  for (const auto& f : findings) w = std::max(w, f.level);
  return w;
}

int Report::ExitCode() const { return Worst() >= Level::kWarn ? 1 : 0; }

Report RunReport(const Config& config, const ReportOptions& options) {
  Report r;
  r.config_path = config.path;
  r.key_dir = config.key_dir;
  r.api_key_source = config.auth == Auth::kVpc ? "vpc"
                     : config.api_key_from_tpm ? "tpm"
                     : config.api_key.empty()  ? ""
                                               : "config";
  ReportContext ctx{config, options, r};
  CheckConfig(ctx);
  CheckTpm(ctx);
  CheckKms(ctx);
  CheckMetadataAccess(ctx);
  CheckKeys(ctx);
  ReadVolumes(ctx);
  CheckVolumes(ctx);
  ReadDevices(ctx);
  CheckTokens(ctx);
  CheckInitramfs(ctx);
  CheckMemory(ctx);
  return r;
}

std::string RenderReportJson(const Report& r) {
  JsonInit();
  Json root(cJSON_CreateObject());
  cJSON* o = root.get();
  cJSON_AddNumberToObject(o, "format", 1);
  AddString(o, "status", OverallStatus(r));
  cJSON_AddNumberToObject(o, "exit_status", r.ExitCode());
  AddString(o, "config", r.config_path);
  AddString(o, "key_dir", r.key_dir);
  cJSON_AddItemToObject(o, "api_key", OptString(r.api_key_source));
  if (r.root_key) {
    cJSON* k = cJSON_AddObjectToObject(o, "root_key");
    AddString(k, "id", r.root_key->id);
    cJSON_AddNumberToObject(k, "state", r.root_key->state);
    AddString(k, "state_name", r.root_key->state_name);
    cJSON_AddItemToObject(k, "key_version", OptString(r.root_key->key_version));
    cJSON_AddItemToObject(k, "key_version_created", OptString(r.root_key->key_version_created));
  } else {
    cJSON_AddNullToObject(o, "root_key");
  }
  cJSON* keys = cJSON_AddArrayToObject(o, "keys");
  for (const auto& k : r.keys) cJSON_AddItemToArray(keys, KeyJson(k));
  cJSON* tokens = cJSON_AddArrayToObject(o, "tokens");
  for (const auto& t : r.tokens) cJSON_AddItemToArray(tokens, TokenJson(t));
  cJSON* images = cJSON_AddArrayToObject(o, "initramfs");
  for (const auto& i : r.initramfs) cJSON_AddItemToArray(images, InitramfsJson(i));
  if (r.tpm) {
    cJSON* t = cJSON_AddObjectToObject(o, "tpm");
    AddString(t, "kind", r.tpm->kind);
    cJSON_AddBoolToObject(t, "unseals", r.tpm->unseals);
    cJSON_AddBoolToObject(t, "locked", r.tpm->locked);
    auto opt_bool = [&](const char* name, const std::optional<bool>& v) {
      if (v) {
        cJSON_AddBoolToObject(t, name, *v);
      } else {
        cJSON_AddNullToObject(t, name);
      }
    };
    opt_bool("unseals_at_boot", r.tpm->unseals_at_boot);
    opt_bool("lock_pcr_sealed", r.tpm->lock_pcr_sealed);
  } else {
    cJSON_AddNullToObject(o, "tpm");
  }
  if (r.memory) {
    cJSON* m = cJSON_AddObjectToObject(o, "memory");
    cJSON_AddNumberToObject(m, "ram_kib", static_cast<double>(r.memory->ram_kib));
    cJSON_AddNumberToObject(m, "argon2_kib", static_cast<double>(r.memory->argon2_kib));
    cJSON* vols = cJSON_AddArrayToObject(m, "volumes");
    for (const auto& v : r.memory->volumes) {
      cJSON* vo = cJSON_CreateObject();
      AddString(vo, "name", v.name);
      AddString(vo, "device", v.device);
      cJSON_AddNumberToObject(vo, "kib", static_cast<double>(v.kib));
      cJSON_AddItemToArray(vols, vo);
    }
  } else {
    cJSON_AddNullToObject(o, "memory");
  }
  cJSON* findings = cJSON_AddArrayToObject(o, "findings");
  for (const auto& f : r.findings) {
    cJSON* fo = cJSON_CreateObject();
    AddString(fo, "check", f.check);
    AddString(fo, "subject", f.subject);
    AddString(fo, "status", LevelName(f.level));
    AddString(fo, "message", f.message);
    cJSON_AddItemToObject(fo, "remedy", OptString(f.remedy));
    cJSON_AddItemToArray(findings, fo);
  }
  Secret text = JsonPrint(o);
  return std::string(text.view()) + "\n";
}

std::string RenderReportTable(const Report& report) {
  // Subjects and messages carry names from the disk (token descriptions,
  // file names): on a terminal their control characters could rewrite the
  // table, so they are shown as \xNN.
  std::vector<Finding> shown;
  for (const auto& f : report.findings) {
    shown.push_back({EscapeControls(f.check), EscapeControls(f.subject), f.level,
                     EscapeControls(f.message), EscapeControls(f.remedy)});
  }
  size_t check_w = 5, subject_w = 7;
  for (const auto& f : shown) {
    check_w = std::max(check_w, f.check.size());
    subject_w = std::max(subject_w, std::min<size_t>(f.subject.size(), 40));
  }
  auto pad = [](std::string s, size_t w) {
    if (s.size() < w) s.append(w - s.size(), ' ');
    return s;
  };
  std::string out = pad("STATUS", 6) + "  " + pad("CHECK", check_w) + "  " +
                    pad("SUBJECT", subject_w) + "  FINDING\n";
  int problems = 0;
  for (const auto& f : shown) {
    std::string level = LevelName(f.level);
    if (f.level >= Level::kWarn) {
      ++problems;
      std::transform(level.begin(), level.end(), level.begin(), ::toupper);
    }
    out += pad(level, 6) + "  " + pad(f.check, check_w) + "  " + pad(f.subject, subject_w) + "  " +
           f.message + "\n";
    if (!f.remedy.empty()) {
      out += std::string(6 + 2 + check_w + 2, ' ') + "remedy: " + f.remedy + "\n";
    }
  }
  if (problems == 0) {
    out += "\nAll good: the next boot should unlock every volume listed.\n";
  } else {
    out += "\n" + std::to_string(problems) + (problems == 1 ? " problem" : " problems") +
           " (WARN or FAIL above).\n";
  }
  return out;
}

}  // namespace hpcs
