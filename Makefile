# make install [PREFIX=/usr/local] [DESTDIR=]: a release silo with the Swift runtime linked
# statically (it runs on hosts without a Swift toolchain), its man page generated from the same
# specs as --help, the reap timer's systemd units and the GitHub runner hooks.
PREFIX ?= /usr/local
DESTDIR ?=
SYSTEMD_DIR ?= $(PREFIX)/lib/systemd/system
COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
SWIFT_FLAGS := -c release --static-swift-stdlib -Xcc -DSILO_COMMIT='"$(COMMIT)"'

.PHONY: build install uninstall test
build:
	swift build $(SWIFT_FLAGS)

install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(SYSTEMD_DIR) $(DESTDIR)$(PREFIX)/share/silo/hooks
	install -m 0755 "$$(swift build $(SWIFT_FLAGS) --show-bin-path)/silo" $(DESTDIR)$(PREFIX)/bin/silo
	$(DESTDIR)$(PREFIX)/bin/silo --man > $(DESTDIR)$(PREFIX)/share/man/man1/silo.1
	sed 's|/usr/local/bin/silo|$(PREFIX)/bin/silo|' contrib/systemd/silo-reap.service > $(DESTDIR)$(SYSTEMD_DIR)/silo-reap.service
	install -m 0644 contrib/systemd/silo-reap.timer $(DESTDIR)$(SYSTEMD_DIR)/silo-reap.timer
	for h in examples/github/hooks/*.sh; do sed 's|^exec silo |exec $(PREFIX)/bin/silo |' $$h > $(DESTDIR)$(PREFIX)/share/silo/hooks/$$(basename $$h); chmod 0755 $(DESTDIR)$(PREFIX)/share/silo/hooks/$$(basename $$h); done

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/silo $(DESTDIR)$(PREFIX)/share/man/man1/silo.1 $(DESTDIR)$(SYSTEMD_DIR)/silo-reap.service $(DESTDIR)$(SYSTEMD_DIR)/silo-reap.timer
	rm -rf $(DESTDIR)$(PREFIX)/share/silo

test:
	scripts/test
