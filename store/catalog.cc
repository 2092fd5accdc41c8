// Catalog::Open: the backend is chosen by the location (store/catalog.h).
#include "store/catalog.h"

#include "store/postgres/postgres_catalog.h"
#include "store/sqlite/sqlite_catalog.h"

namespace homeward::store {

absl::StatusOr<std::unique_ptr<Catalog>> Catalog::Open(const std::string& location,
                                                       const CatalogOptions& options) {
  if (internal::IsPostgresLocation(location)) {
    return internal::PostgresCatalog::Open(location, options);
  }
  return internal::SqliteCatalog::Open(location, options);
}

}  // namespace homeward::store
