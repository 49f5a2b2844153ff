#include "base/error.h"

#include <cstring>

namespace hpcs {

int Fail(std::string* err, int rc, std::string msg) {
  if (err) *err = std::move(msg);
  return rc;
}

int FailErrno(std::string* err, int e, std::string_view what) {
  if (err) *err = std::string(what) + ": " + strerror(e);
  return -e;
}

int WithContext(std::string* err, int rc, std::string_view context) {
  if (err) err->insert(0, context);
  return rc;
}

}  // namespace hpcs
