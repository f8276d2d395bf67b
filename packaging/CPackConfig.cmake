# Packaging: the man page and docs, and a Debian package (CPack DEB) built with
#   cmake --build BUILD --target package      (or: cd BUILD && cpack -G DEB)
# Included once from the top-level CMakeLists.txt, after every install() rule.

# --- man page: gzip'd at build time (Debian policy; lintian: manpage-not-compressed) ---
find_program(IPOPSEC_GZIP gzip REQUIRED)
set(_ipopsec_man ${CMAKE_BINARY_DIR}/packaging/ipop-ipsecd.8.gz)
add_custom_command(OUTPUT ${_ipopsec_man}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/packaging
  COMMAND ${IPOPSEC_GZIP} -9nc ${CMAKE_SOURCE_DIR}/docs/ipop-ipsecd.8 > ${_ipopsec_man}
  DEPENDS ${CMAKE_SOURCE_DIR}/docs/ipop-ipsecd.8
  COMMENT "Compressing the man page ipop-ipsecd(8)" VERBATIM)
add_custom_target(ipopsec_manpage ALL DEPENDS ${_ipopsec_man})
install(FILES ${_ipopsec_man} DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
# ipop-ipsecd.yaml(5), the config file's every key, likewise.
set(_ipopsec_man5 ${CMAKE_BINARY_DIR}/packaging/ipop-ipsecd.yaml.5.gz)
add_custom_command(OUTPUT ${_ipopsec_man5}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/packaging
  COMMAND ${IPOPSEC_GZIP} -9nc ${CMAKE_SOURCE_DIR}/docs/ipop-ipsecd.yaml.5 > ${_ipopsec_man5}
  DEPENDS ${CMAKE_SOURCE_DIR}/docs/ipop-ipsecd.yaml.5
  COMMENT "Compressing the man page ipop-ipsecd.yaml(5)" VERBATIM)
add_custom_target(ipopsec_manpage5 ALL DEPENDS ${_ipopsec_man5})
install(FILES ${_ipopsec_man5} DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
# The example config, every key with its default (also the sample in /etc/ipop-ipsec).
install(FILES ${CMAKE_SOURCE_DIR}/config/ipop-ipsecd.yaml DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
# The Prometheus alert rules for the metrics file (docs/operations.md, "Monitoring with Prometheus").
install(FILES ${CMAKE_SOURCE_DIR}/deploy/prometheus/ipop-ipsec.rules.yml DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# --- changelog (a native package's /usr/share/doc/PACKAGE/changelog.gz), gzip'd likewise ---
set(_ipopsec_changelog ${CMAKE_BINARY_DIR}/packaging/changelog.gz)
add_custom_command(OUTPUT ${_ipopsec_changelog}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/packaging
  COMMAND ${IPOPSEC_GZIP} -9nc ${CMAKE_SOURCE_DIR}/packaging/debian/changelog > ${_ipopsec_changelog}
  DEPENDS ${CMAKE_SOURCE_DIR}/packaging/debian/changelog
  COMMENT "Compressing the changelog" VERBATIM)
add_custom_target(ipopsec_changelog ALL DEPENDS ${_ipopsec_changelog})
install(FILES ${_ipopsec_changelog} DESTINATION ${CMAKE_INSTALL_DOCDIR})

# --- Debian package --------------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ipop-ipsec)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "ipop-ipsec")
set(_ipopsec_maintainer "ipop-ipsec developers <ipop-ipsec@lists.example.org>")
set(IPOPSEC_DEB_MAINTAINER "${_ipopsec_maintainer}" CACHE STRING "Maintainer field of the Debian package")
if(IPOPSEC_DEB_MAINTAINER STREQUAL "ipop-ipsec maintainers <root@localhost>")  # an earlier default
  set_property(CACHE IPOPSEC_DEB_MAINTAINER PROPERTY VALUE "${_ipopsec_maintainer}")
endif()
set(CPACK_PACKAGE_CONTACT "${IPOPSEC_DEB_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "IPsec (ESP transport, X.509) over an IPOP GroupVPN")
set(CPACK_PACKAGE_DESCRIPTION
"ipop-ipsecd watches the tap interface of an IPOP GroupVPN over rtnetlink.
When the tap comes up or its address range changes, it installs fail-closed
kernel (XFRM) policies for the VPN's range, renders the IKE daemon's
configuration (racoon or strongSwan) and restarts the IKE daemon's systemd
unit, only once IPOP is up.")
# The same layout as `cmake --install` with the default prefix /usr: /usr/sbin, /etc,
# /lib/systemd/system (absolute install destinations are kept as they are).
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Shared-library dependencies (libc6, libssl3, libsystemd0, libyaml-cpp0.7, libspdlog1.10,
# libboost-program-options1.74.0, ...) come from dpkg-shlibdeps, with exact version bounds.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Debug info stays in the build tree (lintian: unstripped-binary-or-object).
set(CPACK_STRIP_FILES ON)
# deb-systemd-helper / deb-systemd-invoke in the maintainer scripts.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "init-system-helpers (>= 1.54~)")
# The IKE daemon is the operator's choice (racoon is not packaged in Debian).
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "charon-systemd, strongswan-swanctl, openssl")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/packaging/debian/conffiles
    ${CMAKE_SOURCE_DIR}/packaging/debian/postinst
    ${CMAKE_SOURCE_DIR}/packaging/debian/prerm
    ${CMAKE_SOURCE_DIR}/packaging/debian/postrm)
# Maintainer scripts 0755, conffiles 0644 whatever the checkout's modes are.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/debian/copyright
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
include(CPack)
