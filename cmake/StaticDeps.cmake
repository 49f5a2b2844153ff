# Static dependencies of the statically linked hpcs-unlock (HPCS_STATIC=ON).
#
# include(StaticDeps) after project(): at configure time it runs
# build-static-deps.sh (cached: well under a second once built) and defines
# IMPORTED STATIC targets, every one a full path to a .a file:
#
#   hpcs_static::curl        libcurl.a (7.88.1: HTTP/HTTPS only, mbedTLS, c-ares,
#                            nghttp2), CURL_STATICLIB defined; links
#                            hpcs_static::mbedtls, hpcs_static::cares,
#                            hpcs_static::nghttp2
#   hpcs_static::mbedtls     Debian's libmbedtls.a   -> mbedx509
#   hpcs_static::mbedx509    Debian's libmbedx509.a  -> mbedcrypto
#   hpcs_static::mbedcrypto  Debian's libmbedcrypto.a -> Threads::Threads
#   hpcs_static::cares       Debian's libcares.a
#   hpcs_static::nghttp2     Debian's libnghttp2.a
#   hpcs_static::cjson       libcjson.a, #include <cjson/cJSON.h>
#   hpcs_static::tspi        libtspi.a (trousers), #include <tss/tspi.h>; links
#                            hpcs_static::tspi_openssl_shim, Threads::Threads
#   hpcs_static::tspi_openssl_shim
#                            libtspi-openssl-shim.a (cmake/tspi-openssl-shim.c):
#                            the OpenSSL functions libtspi reaches (SHA-1,
#                            HMAC-SHA1, MGF1) over mbedTLS, instead of OpenSSL's
#                            libcrypto.a (+3.6 MB); links hpcs_static::mbedcrypto.
#                            The rest of libtspi's OpenSSL references stay
#                            undefined: the link needs --gc-sections, and fails
#                            with "undefined reference" if one becomes reachable.
#   hpcs_static::tss2_esys   libtss2-esys.a (tpm2-tss, mbedTLS crypto back end,
#                            tctildr without dlopen), #include <tss2/tss2_esys.h>;
#                            links hpcs_static::tss2_sys, the TCTIs below,
#                            hpcs_static::tss2_mu, hpcs_static::mbedcrypto
#   hpcs_static::tss2_sys, hpcs_static::tss2_mu, hpcs_static::tss2_rc
#   hpcs_static::tss2_tcti_device, hpcs_static::tss2_tcti_swtpm,
#   hpcs_static::tss2_tcti_mssim
#                            the SAPI, marshalling, response-code texts and the
#                            TCTIs linked straight in
#   hpcs_static::keyutils    Debian's libkeyutils.a, #include <keyutils.h>
#
# The executable itself still has to be linked with -static; add
# -Wl,--gc-sections too (the archives are built with -ffunction-sections; with
# hpcs_static::tspi it is required, see above):
# measured 5.8 MB -> 1.7 MB stripped for a test program using every target.
#   target_link_options(hpcs-unlock PRIVATE -static -Wl,--gc-sections)
#
# Where the built archives live (outside the build tree, shared by all clones):
#   -DHPCS_STATIC_DEPS_DIR=DIR, else $ENV{HPCS_DEPS_CACHE}, else
#   $ENV{HOME}/.cache/hpcs-for-luks/static-deps.
# Outputs: HPCS_STATIC_DEPS_PREFIX (the directory used).

include_guard(GLOBAL)

set(HPCS_STATIC_DEPS_DIR "" CACHE PATH
    "Prefix of the static dependency build (empty: \$HPCS_DEPS_CACHE or ~/.cache/hpcs-for-luks/static-deps)")

if(HPCS_STATIC_DEPS_DIR)
  set(HPCS_STATIC_DEPS_PREFIX "${HPCS_STATIC_DEPS_DIR}")
elseif(DEFINED ENV{HPCS_DEPS_CACHE} AND NOT "$ENV{HPCS_DEPS_CACHE}" STREQUAL "")
  set(HPCS_STATIC_DEPS_PREFIX "$ENV{HPCS_DEPS_CACHE}")
elseif(DEFINED ENV{HOME} AND NOT "$ENV{HOME}" STREQUAL "")
  set(HPCS_STATIC_DEPS_PREFIX "$ENV{HOME}/.cache/hpcs-for-luks/static-deps")
else()
  message(FATAL_ERROR
    "HPCS_STATIC: neither HPCS_STATIC_DEPS_DIR, \$HPCS_DEPS_CACHE nor \$HOME is set; "
    "cannot choose where to build the static dependencies")
endif()
file(REAL_PATH "${HPCS_STATIC_DEPS_PREFIX}" HPCS_STATIC_DEPS_PREFIX
     BASE_DIRECTORY "${CMAKE_BINARY_DIR}" EXPAND_TILDE)

set(_hpcs_deps_script "${CMAKE_CURRENT_LIST_DIR}/build-static-deps.sh")
# Editing the script or the shim it compiles re-runs the configure step, hence
# the build.
set_property(DIRECTORY "${CMAKE_SOURCE_DIR}" APPEND PROPERTY
             CMAKE_CONFIGURE_DEPENDS "${_hpcs_deps_script}"
             "${CMAKE_CURRENT_LIST_DIR}/tspi-openssl-shim.c")

message(STATUS "HPCS_STATIC: static dependencies in ${HPCS_STATIC_DEPS_PREFIX}")
execute_process(
  COMMAND "${CMAKE_COMMAND}" -E env "CC=${CMAKE_C_COMPILER}"
          bash "${_hpcs_deps_script}" "${HPCS_STATIC_DEPS_PREFIX}"
  RESULT_VARIABLE _hpcs_deps_rc)
if(NOT _hpcs_deps_rc EQUAL 0)
  message(FATAL_ERROR
    "HPCS_STATIC: building the static dependencies failed (${_hpcs_deps_rc}).\n"
    "  script: ${_hpcs_deps_script} ${HPCS_STATIC_DEPS_PREFIX}\n"
    "  log:    ${HPCS_STATIC_DEPS_PREFIX}.log\n"
    "The failing step and the end of the log are printed above.")
endif()

set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)

# Debian's own static archives. Full paths, so no .so can be picked instead.
function(_hpcs_static_system_archive var file)
  find_library(${var} NAMES "${file}" NO_DEFAULT_PATH
               PATHS "/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}" /usr/lib)
  if(NOT ${var})
    message(FATAL_ERROR "HPCS_STATIC: ${file} not found in /usr/lib; "
                        "cmake/build-static-deps.sh should have installed it")
  endif()
endfunction()

function(_hpcs_static_target name archive)
  cmake_parse_arguments(PARSE_ARGV 2 arg "" "" "INCLUDE;LINK;DEFINE")
  if(NOT EXISTS "${archive}")
    message(FATAL_ERROR "HPCS_STATIC: ${archive} is missing; delete "
                        "${HPCS_STATIC_DEPS_PREFIX} and configure again")
  endif()
  add_library(hpcs_static::${name} STATIC IMPORTED GLOBAL)
  set_target_properties(hpcs_static::${name} PROPERTIES
    IMPORTED_LOCATION "${archive}")
  if(arg_INCLUDE)
    set_property(TARGET hpcs_static::${name} PROPERTY
                 INTERFACE_INCLUDE_DIRECTORIES ${arg_INCLUDE})
  endif()
  if(arg_LINK)
    set_property(TARGET hpcs_static::${name} PROPERTY
                 INTERFACE_LINK_LIBRARIES ${arg_LINK})
  endif()
  if(arg_DEFINE)
    set_property(TARGET hpcs_static::${name} PROPERTY
                 INTERFACE_COMPILE_DEFINITIONS ${arg_DEFINE})
  endif()
endfunction()

_hpcs_static_system_archive(HPCS_STATIC_MBEDTLS_A libmbedtls.a)
_hpcs_static_system_archive(HPCS_STATIC_MBEDX509_A libmbedx509.a)
_hpcs_static_system_archive(HPCS_STATIC_MBEDCRYPTO_A libmbedcrypto.a)
_hpcs_static_system_archive(HPCS_STATIC_CARES_A libcares.a)
_hpcs_static_system_archive(HPCS_STATIC_NGHTTP2_A libnghttp2.a)
_hpcs_static_system_archive(HPCS_STATIC_KEYUTILS_A libkeyutils.a)

set(_p "${HPCS_STATIC_DEPS_PREFIX}")
_hpcs_static_target(mbedcrypto "${HPCS_STATIC_MBEDCRYPTO_A}" LINK Threads::Threads)
_hpcs_static_target(mbedx509 "${HPCS_STATIC_MBEDX509_A}" LINK hpcs_static::mbedcrypto)
_hpcs_static_target(mbedtls "${HPCS_STATIC_MBEDTLS_A}" LINK hpcs_static::mbedx509)
_hpcs_static_target(cares "${HPCS_STATIC_CARES_A}")
_hpcs_static_target(nghttp2 "${HPCS_STATIC_NGHTTP2_A}")
_hpcs_static_target(keyutils "${HPCS_STATIC_KEYUTILS_A}")
_hpcs_static_target(curl "${_p}/lib/libcurl.a"
  INCLUDE "${_p}/include"
  DEFINE CURL_STATICLIB
  LINK hpcs_static::mbedtls hpcs_static::cares hpcs_static::nghttp2)
_hpcs_static_target(cjson "${_p}/lib/libcjson.a" INCLUDE "${_p}/include")
_hpcs_static_target(tspi_openssl_shim "${_p}/lib/libtspi-openssl-shim.a"
  LINK hpcs_static::mbedcrypto)
_hpcs_static_target(tspi "${_p}/lib/libtspi.a"
  INCLUDE "${_p}/include"
  LINK hpcs_static::tspi_openssl_shim Threads::Threads)
foreach(_lib mu rc)
  _hpcs_static_target(tss2_${_lib} "${_p}/lib/libtss2-${_lib}.a" INCLUDE "${_p}/include")
endforeach()
foreach(_tcti device swtpm mssim)
  _hpcs_static_target(tss2_tcti_${_tcti} "${_p}/lib/libtss2-tcti-${_tcti}.a"
    INCLUDE "${_p}/include" LINK hpcs_static::tss2_mu)
endforeach()
_hpcs_static_target(tss2_sys "${_p}/lib/libtss2-sys.a" INCLUDE "${_p}/include"
  LINK hpcs_static::tss2_mu)
_hpcs_static_target(tss2_esys "${_p}/lib/libtss2-esys.a" INCLUDE "${_p}/include"
  LINK hpcs_static::tss2_sys hpcs_static::tss2_tcti_device hpcs_static::tss2_tcti_swtpm
       hpcs_static::tss2_tcti_mssim hpcs_static::tss2_mu hpcs_static::mbedcrypto)
unset(_p)
