// MoveUp: copies an embedded data directory (the SQLite catalog, <data_dir>/catalog.db, and
// the photo files under <data_dir>/photos/) into an EMPTY PostgreSQL catalog database, so
// that an office that outgrew one machine keeps everything it has when it moves to several
// servers on one database (docs/DEPLOY.md, "Moving up from one machine"; the command is
// tools/homeward-move-up).
//
// What is copied, keeping every id: cases, photos (their bytes into photo_bytes, one row per
// distinct SHA-256, as the PostgreSQL backend stores them), faces with their descriptors,
// leads with their evidence and reviews, sighting clusters, candidate grants, the change log
// (every seq, so index snapshots made on the SQLite catalog stay valid), the audit trail
// (append-only: COPY inserts, which the append-only triggers allow) and the counters. The
// per-kind counts are recomputed from the copied rows; every identity sequence is set past
// the largest id the source ever gave (SQLite's id_high_water and sqlite_sequence), so an id
// of a deleted case is never given again.
//
// One transaction: the target holds all of it or, after any failure, none of it (its schema
// may have been created). Before committing, the rows of every table are counted on both
// sides; a difference aborts. The search comparison (same candidates before and after) needs
// the face pipeline and lives in the tool, over gallery/.
//
// THREAD SAFETY: one call at a time per data directory (it holds the directory's catalog
// open, so no server can write it meanwhile).
#ifndef HOMEWARD_STORE_MOVE_UP_H_
#define HOMEWARD_STORE_MOVE_UP_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "store/catalog.h"

namespace homeward::store {

struct MoveUpOptions {
  // The data directory's catalog, already open (Catalog::Open(data_dir)), for a caller that
  // keeps it open afterwards (to compare searches). Null (default): MoveUp opens it and closes
  // it before returning. Opening it upgrades an older schema, finishes an interrupted deletion
  // and keeps servers out of the directory while its rows are read.
  std::shared_ptr<Catalog> source;
  // Progress lines ("faces: 100000 rows"), from the calling thread. Empty: none.
  std::function<void(absl::string_view)> progress;
  // Tests only: called inside the copying transaction after each table is loaded; an error
  // aborts the move (the target is left empty) and is returned.
  std::function<absl::Status(absl::string_view table)> after_table_for_test;
};

struct MoveUpReport {
  struct Table {
    std::string name;
    int64_t source_rows = 0, target_rows = 0;
  };
  std::vector<Table> tables;  // in copy order; equal counts on success
  int64_t photo_files = 0;    // distinct photo files read (= photo_bytes rows)
  int64_t photo_bytes = 0;    // their total size
  struct Sequence {
    std::string table;
    int64_t last_id = 0;  // the next id given is last_id + 1
  };
  std::vector<Sequence> sequences;
  int64_t last_change_seq = 0;  // the change log position, the same on both sides
  int64_t database_bytes = 0;   // pg_database_size after the commit
  double copy_seconds = 0;      // opening both sides, copying, counting and committing
};

// Copies the catalog and photos of `data_dir` into the PostgreSQL database at `url`
// (postgresql:// or postgres://, as Catalog::Open), creating the catalog schema there if it has
// none.
// Returns the report on success. FAILED_PRECONDITION, with nothing written, when the target
// is not empty (a Homeward table holds rows, or the schema holds tables that are not
// Homeward's; the message names one), when the directory is held by a running server, or when
// either schema is newer than this build; DATA_LOSS when a photo file is missing or does not
// match its SHA-256; INTERNAL when the copied row counts differ; the errors of Catalog::Open
// for an unreachable or refused database. On any error the target holds no copied row.
absl::StatusOr<MoveUpReport> MoveUp(const std::string& data_dir, const std::string& url,
                                    const MoveUpOptions& options = {});

// `url` with any password replaced by "***", for messages and logs.
std::string MaskedLocation(const std::string& url);

}  // namespace homeward::store

#endif  // HOMEWARD_STORE_MOVE_UP_H_
