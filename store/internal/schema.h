// The catalog's schema and its migrations. Version 1: cases, photos, faces. Version 2: adds
// cases.owner_key_id, the append-only audit table, the change log (seeded with one 'add' per
// existing face), the pending_unlink journal and the lookup indexes. Version 3: leads (one per
// case pair, with the best face pair), lead_evidence (every face pair seen, with the photo
// content keys that make a rejection stick), lead_reviews and sighting_clusters. Version 4:
// id_high_water, so that a deleted case's, photo's, face's or lead's id is never given again
// (inserts take max_id + 1; triggers keep it current). Version 5: kind_counts and cases by
// owner. Version 6: candidate_grants. Version 7: cases.lead_ended_ms and counters (the
// sightings expired by retention, store/sqlite/retention.cc).
#ifndef HOMEWARD_STORE_INTERNAL_SCHEMA_H_
#define HOMEWARD_STORE_INTERNAL_SCHEMA_H_

#include <sqlite3.h>

#include "absl/status/status.h"

namespace homeward::store::internal {

inline constexpr int kSchemaVersion = 9;

// Brings the database to kSchemaVersion in one IMMEDIATE transaction (a fresh file runs every
// migration). FAILED_PRECONDITION if the file is newer than this code.
absl::Status Migrate(sqlite3* db);

}  // namespace homeward::store::internal

#endif  // HOMEWARD_STORE_INTERNAL_SCHEMA_H_
