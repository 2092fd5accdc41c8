homeward_test(catalog_test SOURCES catalog_test.cc LIBS homeward_store homeward_catalog_backends SQLite::SQLite3)
