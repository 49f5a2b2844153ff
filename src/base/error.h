// Errors are values (STYLE.md): a function that fails returns a negative
// errno value and puts a message for people into an optional std::string*
// err. These helpers write that pair in one statement, always in the order
// (err, code, message):
//
//   if (fd < 0) return FailErrno(err, errno, "cannot open '" + path + "'");
//   if (n > max) return Fail(err, -EFBIG, "'" + path + "' is too large");
//   if (int r = Parse(text, err); r < 0) return WithContext(err, r, path + ": ");
//
// Only .cc files include this header.
#ifndef HPCS_BASE_ERROR_H_
#define HPCS_BASE_ERROR_H_

#include <string>
#include <string_view>

namespace hpcs {

// *err = msg (when err is given); returns rc.
int Fail(std::string* err, int rc, std::string msg);

// *err = "<what>: <strerror(e)>"; returns -e. Pass errno before anything can
// change it.
int FailErrno(std::string* err, int e, std::string_view what);

// Puts context before the message a callee left in *err; returns rc.
int WithContext(std::string* err, int rc, std::string_view context);

}  // namespace hpcs

#endif  // HPCS_BASE_ERROR_H_
