#include "core/luks2_metadata.h"

#include <fcntl.h>
#include <mbedtls/md.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/error.h"
#include "base/fd.h"
#include "base/json.h"
#include "base/strutil.h"

namespace hpcs {

namespace {

// The binary header (cryptsetup's lib/luks2/luks2.h, struct luks2_hdr_disk):
// 4096 bytes, numbers big-endian, followed by the JSON area up to hdr_size.
constexpr size_t kBinarySize = 4096;
constexpr std::string_view kMagicPrimary("LUKS\xba\xbe", 6);
constexpr std::string_view kMagicSecondary("SKUL\xba\xbe", 6);
constexpr size_t kVersionAt = 6;       // uint16
constexpr size_t kHdrSizeAt = 8;       // uint64: binary header and JSON area
constexpr size_t kSeqidAt = 16;        // uint64: raised on every update
constexpr size_t kChecksumAlgAt = 72;  // char[32], NUL-terminated
constexpr size_t kChecksumAlgSize = 32;
constexpr size_t kUuidAt = 168;  // char[40], NUL-terminated: luksUUID
constexpr size_t kUuidSize = 40;
constexpr size_t kHdrOffsetAt = 256;  // uint64: where this copy starts
constexpr size_t kChecksumAt = 448;   // uint8[64]; SHA-256 uses the first 32
constexpr size_t kChecksumSize = 64;
constexpr size_t kSha256Size = 32;
// The sizes hdr_size may have; each is also an offset where the secondary
// copy may start (it follows the primary's JSON area).
constexpr uint64_t kHdrSizes[] = {0x4000,  0x8000,   0x10000,  0x20000, 0x40000,
                                  0x80000, 0x100000, 0x200000, 0x400000};

uint64_t BigEndian(const std::string& b, size_t at, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = v << 8 | static_cast<unsigned char>(b[at + i]);
  return v;
}

// What one copy of the header turned out to be, from worst to best: a
// device's result is that of its best copy.
enum class CopyState { kAbsent, kShort, kDamaged, kIoError, kOk };

struct Copy {
  CopyState state = CopyState::kAbsent;
  uint64_t version = 0;   // when the magic is there
  uint64_t hdr_size = 0;  // kOk
  uint64_t seqid = 0;     // kOk
  LuksHeader header;      // kOk
  std::string why;        // otherwise
};

// Reads up to `n` bytes at `offset` into `buf` (fewer at the end of the
// file): the number read, or -errno.
ssize_t ReadAt(int fd, std::string* buf, size_t n, uint64_t offset) {
  buf->resize(n);
  size_t done = 0;
  while (done < n) {
    ssize_t r = pread(fd, buf->data() + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -errno;
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  buf->resize(done);
  return static_cast<ssize_t>(done);
}

bool Sha256Matches(const std::string& header, const std::string& json) {
  std::string binary = header;  // with the checksum field zeroed
  std::fill_n(binary.begin() + kChecksumAt, kChecksumSize, '\0');
  unsigned char sum[kSha256Size];
  mbedtls_md_context_t md;
  mbedtls_md_init(&md);
  bool ok = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 0) == 0 &&
            mbedtls_md_starts(&md) == 0 &&
            mbedtls_md_update(&md, reinterpret_cast<const unsigned char*>(binary.data()),
                              binary.size()) == 0 &&
            mbedtls_md_update(&md, reinterpret_cast<const unsigned char*>(json.data()),
                              json.size()) == 0 &&
            mbedtls_md_finish(&md, sum) == 0;
  mbedtls_md_free(&md);
  return ok && memcmp(sum, header.data() + kChecksumAt, kSha256Size) == 0;
}

Copy Failed(Copy c, CopyState state, std::string why) {
  c.state = state;
  c.why = std::move(why);
  return c;
}

// One copy of the header: the primary at offset 0, or a secondary at `offset`.
Copy ReadCopy(int fd, uint64_t offset, bool secondary) {
  Copy c;
  std::string bin;
  ssize_t n = ReadAt(fd, &bin, kBinarySize, offset);
  if (n < 0) return Failed(c, CopyState::kIoError, std::string("read error: ") + strerror(-n));
  std::string_view magic = secondary ? kMagicSecondary : kMagicPrimary;
  if (bin.size() < kHdrSizeAt) {
    return Failed(c, CopyState::kShort, "ends after " + std::to_string(n) + " bytes");
  }
  if (std::string_view(bin).substr(0, magic.size()) != magic) {
    return Failed(c, CopyState::kAbsent, "no LUKS2 magic");
  }
  c.version = BigEndian(bin, kVersionAt, 2);
  if (bin.size() < kBinarySize) {
    return Failed(c, CopyState::kShort, "ends after " + std::to_string(n) + " bytes");
  }
  if (c.version != 2) {
    return Failed(c, CopyState::kDamaged, "version " + std::to_string(c.version));
  }
  if (uint64_t at = BigEndian(bin, kHdrOffsetAt, 8); at != offset) {
    return Failed(c, CopyState::kDamaged, "says it is at offset " + std::to_string(at));
  }
  uint64_t hdr_size = BigEndian(bin, kHdrSizeAt, 8);
  if (std::find(std::begin(kHdrSizes), std::end(kHdrSizes), hdr_size) == std::end(kHdrSizes) ||
      (secondary && hdr_size != offset)) {
    return Failed(c, CopyState::kDamaged, "header size " + std::to_string(hdr_size));
  }
  std::string_view alg(bin.data() + kChecksumAlgAt, kChecksumAlgSize);
  alg = alg.substr(0, alg.find('\0'));
  if (alg != "sha256") {
    return Failed(c, CopyState::kDamaged,
                  "checksum algorithm '" + Printable(alg, kChecksumAlgSize) + "' not supported");
  }
  std::string json;
  n = ReadAt(fd, &json, hdr_size - kBinarySize, offset + kBinarySize);
  if (n < 0) return Failed(c, CopyState::kIoError, std::string("read error: ") + strerror(-n));
  if (json.size() < hdr_size - kBinarySize) {
    return Failed(c, CopyState::kShort,
                  "ends after " + std::to_string(kBinarySize + json.size()) + " of its " +
                      std::to_string(hdr_size) + " bytes");
  }
  if (!Sha256Matches(bin, json)) {
    return Failed(c, CopyState::kDamaged, "checksum mismatch");
  }
  // The JSON text, then NULs to the end of the area.
  size_t end = json.find('\0');
  if (end == std::string::npos || json.find_first_not_of('\0', end) != std::string::npos) {
    return Failed(c, CopyState::kDamaged, "JSON area not NUL-terminated");
  }
  std::string why;
  if (ParseLuks2Metadata(std::string_view(json).substr(0, end), &c.header, &why) < 0) {
    return Failed(c, CopyState::kDamaged, why);
  }
  c.header.uuid = bin.substr(kUuidAt, kUuidSize);
  c.header.uuid.resize(strnlen(c.header.uuid.c_str(), kUuidSize));
  c.hdr_size = hdr_size;
  c.seqid = BigEndian(bin, kSeqidAt, 8);
  c.state = CopyState::kOk;
  return c;
}

// The secondary copy: after the primary's JSON area when the primary is
// intact; else the first intact one at the offsets it may have (the
// primary's hdr_size may be what is damaged), or the best failure.
Copy ReadSecondary(int fd, const Copy& primary) {
  if (primary.state == CopyState::kOk) return ReadCopy(fd, primary.hdr_size, true);
  Copy best;
  best.why = "none found";
  for (uint64_t offset : kHdrSizes) {
    Copy c = ReadCopy(fd, offset, true);
    if (c.state == CopyState::kOk) return c;
    if (c.state > best.state && c.state >= CopyState::kDamaged) {
      best = std::move(c);
      best.why = "at offset " + std::to_string(offset) + ": " + best.why;
    }
  }
  return best;
}

}  // namespace

const LuksKeyslot* LuksHeader::Keyslot(int id) const {
  for (const auto& k : keyslots) {
    if (k.id == id) return &k;
  }
  return nullptr;
}

std::vector<const LuksToken*> LuksHeader::KeyringTokens(std::string_view desc) const {
  std::vector<const LuksToken*> out;
  for (const auto& t : tokens) {
    if (t.type == "luks2-keyring" && t.key_description == desc) out.push_back(&t);
  }
  return out;
}

bool ParseLuks2Id(std::string_view s, int* out) {
  unsigned long long n = 0;
  if (!ParseUint(s, &n) || n > 1024) return false;
  *out = static_cast<int>(n);
  return true;
}

int ParseLuks2Metadata(std::string_view json, LuksHeader* out, std::string* err) {
  Json j = JsonParse(json);
  const cJSON* slots = j ? JsonObject(j.get(), "keyslots") : nullptr;
  if (!slots) {
    if (err) *err = "not LUKS2 metadata: " + Printable(Trim(json), 80);
    return -EPROTO;
  }
  LuksHeader h;
  const cJSON* item = nullptr;
  cJSON_ArrayForEach(item, slots) {
    LuksKeyslot k;
    if (!item->string || !ParseLuks2Id(item->string, &k.id)) continue;
    if (const cJSON* kdf = JsonObject(item, "kdf")) {
      k.kdf = std::string(JsonString(kdf, "type").value_or(""));
      // A number from the disk: only a whole one in range converts (a
      // negative, huge or NaN one would be undefined behaviour).
      double m = JsonNumber(kdf, "memory").value_or(0);
      k.memory_kib = m >= 0 && m <= 9007199254740992.0 ? static_cast<uint64_t>(m) : 0;
    }
    h.keyslots.push_back(std::move(k));
  }
  if (const cJSON* tokens = JsonObject(j.get(), "tokens")) {
    cJSON_ArrayForEach(item, tokens) {
      LuksToken t;
      if (!item->string || !ParseLuks2Id(item->string, &t.id)) continue;
      t.type = std::string(JsonString(item, "type").value_or(""));
      t.key_description = std::string(JsonString(item, "key_description").value_or(""));
      if (const cJSON* ks = JsonArray(item, "keyslots")) {
        const cJSON* s = nullptr;
        cJSON_ArrayForEach(s, ks) {
          int id = 0;
          if (cJSON_IsString(s) && ParseLuks2Id(s->valuestring, &id)) t.keyslots.push_back(id);
        }
      }
      t.json = std::string(JsonPrint(item).view());
      h.tokens.push_back(std::move(t));
    }
  }
  auto by_id = [](const auto& a, const auto& b) { return a.id < b.id; };
  std::sort(h.keyslots.begin(), h.keyslots.end(), by_id);
  std::sort(h.tokens.begin(), h.tokens.end(), by_id);
  *out = std::move(h);
  return 0;
}

int ReadLuks2Header(const std::string& path, LuksHeader* out, std::string* err) {
  // O_NONBLOCK: a FIFO put where a device should be must not hang us on
  // open; reading a file or a block device is not changed by it.
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) return FailErrno(err, errno, "cannot open '" + path + "'");
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return FailErrno(err, errno, "cannot stat '" + path + "'");
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return Fail(err, -EMEDIUMTYPE, "'" + path + "' is neither a block device nor a regular file");
  }
  Copy primary = ReadCopy(fd.get(), 0, false);
  switch (primary.state) {
    case CopyState::kAbsent:
      return Fail(err, -EMEDIUMTYPE, "'" + path + "' is not a LUKS2 volume (no LUKS header)");
    case CopyState::kIoError:
      return Fail(err, -EIO, "'" + path + "': cannot read its LUKS2 header: " + primary.why);
    default:
      break;
  }
  if (primary.version == 1) {
    return Fail(err, -EMEDIUMTYPE, "'" + path + "' is a LUKS1 volume, not LUKS2");
  }
  Copy secondary = ReadSecondary(fd.get(), primary);
  Copy* use = primary.state == CopyState::kOk ? &primary : nullptr;
  if (secondary.state == CopyState::kOk && (!use || secondary.seqid > primary.seqid)) {
    use = &secondary;
  }
  if (use) {
    *out = std::move(use->header);
    return 0;
  }
  std::string both = "primary: " + primary.why + "; secondary: " + secondary.why;
  switch (std::max(primary.state, secondary.state)) {
    case CopyState::kIoError:
      return Fail(err, -EIO, "'" + path + "': cannot read its LUKS2 header (" + both + ")");
    case CopyState::kDamaged:
      return Fail(err, -EBADMSG,
                  "'" + path + "': both copies of its LUKS2 header are damaged (" + both + ")");
    default:
      return Fail(err, -EMEDIUMTYPE,
                  "'" + path + "' is too short for a LUKS2 header: it " + primary.why);
  }
}

}  // namespace hpcs
