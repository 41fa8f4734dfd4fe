# Where `cmake --install` puts things, and the Debian package CPack builds
# from the same rules (`cpack -G DEB` in the build directory).
#
#   bin/spilttea-ops
#   share/man/man1/*.1, share/man/man5/*.5
#   share/bash-completion/completions/spilttea-ops     (bash-completion's lazy-load dir)
#   share/zsh/vendor-completions/_spilttea-ops         (prefix /usr, the .deb: Debian's zsh $fpath)
#   share/zsh/site-functions/_spilttea-ops             (any other prefix, e.g. /usr/local)
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
# zsh's $fpath on Debian holds /usr/local/share/zsh/site-functions and
# /usr/share/zsh/vendor-completions (no /usr/share/zsh/site-functions), so the
# directory depends on the prefix, which `cmake --install --prefix` and CPack
# choose only at install time: decided there. CPack installs under
# STAGING/usr, hence "ends in /usr". ST_ZSH_COMPLETION_DIR (relative to the
# prefix) overrides the choice.
set(ST_ZSH_COMPLETION_DIR "" CACHE STRING
    "zsh completion directory relative to the prefix (empty: vendor-completions for /usr, else site-functions)")
install(CODE "
  set(st_zsh_dir \"${ST_ZSH_COMPLETION_DIR}\")
  if(st_zsh_dir STREQUAL \"\")
    if(CMAKE_INSTALL_PREFIX MATCHES \"(^|/)usr/*$\")
      set(st_zsh_dir \"${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions\")
    else()
      set(st_zsh_dir \"${CMAKE_INSTALL_DATADIR}/zsh/site-functions\")
    endif()
  endif()
  file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/\${st_zsh_dir}\" TYPE FILE
       FILES \"${CMAKE_SOURCE_DIR}/completion/_spilttea-ops\")
")

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
