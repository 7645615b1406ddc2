# The Debian package, built by CPack from a build tree:
#
#   bash scripts/build.sh build -DFLUX_WERROR=ON && (cd build && cpack -G DEB)
#
# gives build/flux-gateway_<version>_<arch>.deb:
#
#   /usr/bin/flux-gateway, /usr/bin/fluxbench        stripped
#   /lib/systemd/system/flux-gateway.service         Type=notify, watchdog, sandbox
#   /etc/default/flux-gateway                        conffile: FLUX_GATEWAY_OPTS
#   /usr/share/flux-gateway/grafana/                 dashboard + provisioning
#   /usr/share/flux-gateway/prometheus/              scrape config, alert rules, rule tests
#   /usr/share/doc/flux-gateway/                     copyright, changelog.gz, README.md
#
# Depends come from dpkg-shlibdeps (libevent, libsystemd0, prometheus-cpp,
# libstdc++, libc). Maintainer scripts only reload systemd, restart a running
# gateway on upgrade and stop it on removal: installing does not start it.
# tests/packaging/package_test.sh builds and checks the package (lintian, an
# extracted binary run on free ports). Included from the top CMakeLists.txt.

set(FLUX_PACKAGING_DIR ${CMAKE_CURRENT_LIST_DIR})
set(FLUX_DOC_DIR share/doc/flux-gateway)
set(FLUX_DATA_DIR share/flux-gateway)

install(TARGETS flux-gateway fluxbench RUNTIME DESTINATION bin)
# Absolute: Debian's places, whatever the prefix (CPACK_SET_DESTDIR below).
install(FILES ${FLUX_PACKAGING_DIR}/flux-gateway.service DESTINATION /lib/systemd/system)
install(FILES ${FLUX_PACKAGING_DIR}/flux-gateway.default DESTINATION /etc/default
  RENAME flux-gateway)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/grafana/ DESTINATION ${FLUX_DATA_DIR}/grafana)
install(FILES ${PROJECT_SOURCE_DIR}/prometheus/prometheus.yml
              ${PROJECT_SOURCE_DIR}/prometheus/alerts.yml
              ${PROJECT_SOURCE_DIR}/prometheus/alerts_test.yml
  DESTINATION ${FLUX_DATA_DIR}/prometheus)

# Debian wants the changelog compressed with -9 and without a timestamp (-n),
# so that two builds of one version give the same bytes.
set(FLUX_CHANGELOG_GZ ${CMAKE_CURRENT_BINARY_DIR}/packaging/changelog.gz)
file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/packaging)
execute_process(COMMAND gzip -9 -n -c ${FLUX_PACKAGING_DIR}/changelog
  OUTPUT_FILE ${FLUX_CHANGELOG_GZ} RESULT_VARIABLE gzip_status)
if(NOT gzip_status EQUAL 0)
  message(FATAL_ERROR "packaging: gzip of packaging/changelog failed (${gzip_status})")
endif()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${FLUX_PACKAGING_DIR}/changelog)
install(FILES ${FLUX_PACKAGING_DIR}/copyright ${FLUX_CHANGELOG_GZ} ${PROJECT_SOURCE_DIR}/README.md
  DESTINATION ${FLUX_DOC_DIR})

set(CMAKE_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
  OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)

set(FLUX_PACKAGE_MAINTAINER "Flux maintainers <flux@example.org>"
  CACHE STRING "Maintainer field of the Debian package")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME flux-gateway)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT ${FLUX_PACKAGE_MAINTAINER})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "TCP gateway for a framed echo protocol with resumable sessions")
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER ${FLUX_PACKAGE_MAINTAINER})
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The synopsis line is CPACK_PACKAGE_DESCRIPTION_SUMMARY; this is the rest.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
"Flux is a TCP gateway built on a libevent reactor. It speaks a
length-prefixed framed protocol that echoes data, answers heartbeats
and keeps resumable sessions, and serves Prometheus metrics, JSON
statistics, a health check and a live dashboard on a second port.
.
This package holds the gateway, the fluxbench load generator, a
sandboxed systemd unit with a watchdog, and a Grafana dashboard and
Prometheus alert rules for it.")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${FLUX_PACKAGING_DIR}/conffiles
  ${FLUX_PACKAGING_DIR}/postinst
  ${FLUX_PACKAGING_DIR}/prerm
  ${FLUX_PACKAGING_DIR}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
