# Data minimisation (issue 15, docs/PRIVACY.md): the catalog's expiry of SIGHTING cases on a
# real SQLite file, and expiry and export end to end through the real server binary with its
# clock moved forward by --test-only-clock-offset-days (skipped without models and photos).
homeward_test(catalog_retention_test SOURCES catalog_retention_test.cc
  LIBS homeward_store SQLite::SQLite3 absl::strings)
