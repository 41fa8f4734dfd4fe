# Where `cmake --install` puts things, and the Debian package CPack builds
# from the same rules (`cpack -G DEB` in the build directory).
#
#   bin/spilttea-ops
#   share/man/man1/*.1, share/man/man5/*.5
#   share/bash-completion/completions/spilttea-ops     (bash-completion's lazy-load dir)
#   share/zsh/vendor-completions/_spilttea-ops         (Debian's zsh $fpath entry)
#   share/spilttea-ops/runbooks/*.yaml                 (the built-in runbooks, to copy and adapt)
#   share/doc/spilttea-ops/{README.md,config.example.yaml,examples/}
include(GNUInstallDirs)

install(TARGETS spilttea-ops RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

file(GLOB ST_MAN1 CONFIGURE_DEPENDS "${CMAKE_SOURCE_DIR}/man/*.1")
file(GLOB ST_MAN5 CONFIGURE_DEPENDS "${CMAKE_SOURCE_DIR}/man/*.5")
install(FILES ${ST_MAN1} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${ST_MAN5} DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)

install(FILES "${CMAKE_SOURCE_DIR}/completion/spilttea-ops.bash"
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME spilttea-ops)
install(FILES "${CMAKE_SOURCE_DIR}/completion/_spilttea-ops"
        DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)

file(GLOB ST_RUNBOOK_YAML CONFIGURE_DEPENDS "${CMAKE_SOURCE_DIR}/runbooks/*.yaml")
install(FILES ${ST_RUNBOOK_YAML} DESTINATION ${CMAKE_INSTALL_DATADIR}/spilttea-ops/runbooks)

install(FILES "${CMAKE_SOURCE_DIR}/README.md" "${CMAKE_SOURCE_DIR}/config.example.yaml"
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY "${CMAKE_SOURCE_DIR}/examples/" DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# The .deb: its Depends come from dpkg-shlibdeps on the binary (libpq5,
# libhiredis0.14, libcurl4, libjansson4, libyaml-0-2, libssl3, libzstd1,
# zlib1g, libc6), so they match what the build linked against.
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "spilttea-ops")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_CONTACT "Spilt Tea operations <ops@spilttea.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "runs the Spilt Tea operations runbook as checked steps")
set(CPACK_PACKAGE_DESCRIPTION
  "spilttea-ops deploys, rolls back, backs up and restores, monitors and\n\
diagnoses the Spilt Tea stack through the Docker Engine API, PostgreSQL and\n\
Redis, with safety checks before and verification after every step.")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "admin")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# It talks to a Docker daemon; backup.via: local runs this host's pg_dump.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "docker.io")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "postgresql-client-15")
set(CPACK_STRIP_FILES ON)
include(CPack)
