// Package state records what berth has applied: one embedded bbolt store per
// host holding, for each project, a record per resource instance, a lineage
// and a serial, plus per-project operation locks and JSON export/import for
// backups.
//
// The planner reads a project through Snapshot and the applier records each
// finished change at once through Put and Delete, so a crash mid-apply loses
// at most the change in flight. Of berth's packages it imports only
// resource; it knows nothing of HCL, plans or drivers. plan, apply, cluster,
// agent and cmd/berth may import it; drivers may not.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/seed-e88ffcd2/berth/resource"
)

// DefaultPath is where an agent keeps its store.
const DefaultPath = "/var/lib/berth/state.db"

// storeFormat versions the bucket layout. Each record carries its own
// version too (see record.go), so records can be upgraded one at a time as
// they are read while the layout stays put.
const storeFormat = 1

// Bucket layout:
//
//	meta/format                 storeFormat, decimal
//	projects/<name>/meta        projectMeta JSON
//	projects/<name>/objects/<addr>  record JSON
var (
	bucketMeta     = []byte("meta")
	keyFormat      = []byte("format")
	bucketProjects = []byte("projects")
	keyProjectMeta = []byte("meta")
	bucketObjects  = []byte("objects")
)

// openTimeout bounds how long one transaction waits for bbolt's file lock.
// Transactions last milliseconds, so only a wedged process makes it expire.
const openTimeout = 5 * time.Second

// Store is a host's state store. Its methods are safe for concurrent use;
// each is one bbolt transaction.
//
// The database is opened for each transaction and closed after it, not held
// open: bbolt locks the whole file while it is open, which would turn a
// second berth process into "store in use" before it could learn who holds
// the project's operation lock (see Lock) — the lock that two applies
// actually contend for. Readers open it shared, writers exclusively.
type Store struct {
	mu   sync.Mutex // one transaction at a time from this process
	path string

	// Seams for golden tests, which need stable times and lineages.
	now        func() time.Time
	newLineage func() string
}

// projectMeta is what identifies a project's history: lineage names it
// (two states with different lineages never describe the same objects) and
// serial counts its changes.
type projectMeta struct {
	Lineage string `json:"lineage"`
	Serial  uint64 `json:"serial"`
	// Dir is the configuration directory that applies the project.
	Dir string `json:"dir,omitempty"`
	// Outputs are the output values of the last apply (cty JSON of an
	// object); they are derived, so writing them does not bump the serial.
	Outputs json.RawMessage `json:"outputs,omitempty"`
}

// Snapshot is a consistent read of one project.
type Snapshot struct {
	Project string
	// Lineage is empty and Serial zero for a project never written.
	Lineage string
	Serial  uint64
	// Dir is the configuration directory that claimed the project, "" if
	// none did yet.
	Dir     string
	Objects map[resource.Addr]*resource.Object
	// Outputs are the output values recorded by the last apply.
	Outputs map[string]cty.Value
}

// Sorted lists the objects by address, for stable output.
func (s *Snapshot) Sorted() []*resource.Object {
	objs := make([]*resource.Object, 0, len(s.Objects))
	for _, o := range s.Objects {
		objs = append(objs, o)
	}
	slices.SortFunc(objs, func(a, b *resource.Object) int { return compareAddr(a.Addr, b.Addr) })
	return objs
}

// Open opens the store at path, creating it and its directory if needed,
// and checks its format. Several processes may have a store open; a
// transaction waits up to five seconds for another's to finish, then fails
// with an error wrapping resource.ErrUnavailable.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("state store %s: %w", path, err)
	}
	if err := os.MkdirAll(lockDir(path), 0o700); err != nil {
		return nil, fmt.Errorf("state store %s: %w", path, err)
	}
	s := &Store{
		path:       path,
		now:        func() time.Time { return time.Now().UTC() },
		newLineage: func() string { return uuid.NewString() },
	}
	err := s.update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketProjects); err != nil {
			return err
		}
		raw := meta.Get(keyFormat)
		if raw == nil {
			return meta.Put(keyFormat, []byte(strconv.Itoa(storeFormat)))
		}
		format, err := strconv.Atoi(string(raw))
		if err != nil {
			return fmt.Errorf("unreadable format %q", raw)
		}
		if format > storeFormat {
			return newerFormatError(format)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Close releases the store. The database is open only during transactions,
// so there is nothing to flush; operation locks taken with Lock are not
// released by Close (see Lock).
func (s *Store) Close() error { return nil }

// view runs fn in a read transaction on the database opened shared.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	return s.transact(true, fn)
}

// update runs fn in a write transaction on the database opened exclusively.
func (s *Store) update(fn func(*bolt.Tx) error) error {
	return s.transact(false, fn)
}

func (s *Store) transact(readOnly bool, fn func(*bolt.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{Timeout: openTimeout, ReadOnly: readOnly})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return &kindError{
			msg:  fmt.Sprintf("state store %s is busy: another berth process held it for over %s", s.path, openTimeout),
			kind: resource.ErrUnavailable,
		}
	}
	if err != nil {
		return fmt.Errorf("state store %s: %w", s.path, err)
	}
	if readOnly {
		err = db.View(fn)
	} else {
		err = db.Update(fn)
	}
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("state store %s: %w", s.path, cerr)
	}
	return err
}

// Snapshot reads one project. A project never written reads as empty, which
// is what the first plan of a configuration needs.
func (s *Store) Snapshot(project string) (*Snapshot, error) {
	if err := checkProject(project); err != nil {
		return nil, err
	}
	snap := &Snapshot{Project: project, Objects: map[resource.Addr]*resource.Object{}}
	err := s.view(func(tx *bolt.Tx) error {
		pb := projectBucket(tx, project)
		if pb == nil {
			return nil
		}
		meta, err := readProjectMeta(pb)
		if err != nil {
			return err
		}
		snap.Lineage, snap.Serial, snap.Dir = meta.Lineage, meta.Serial, meta.Dir
		if len(meta.Outputs) > 0 {
			v, err := ctyjson.Unmarshal(meta.Outputs, cty.DynamicPseudoType)
			if err != nil {
				return fmt.Errorf("outputs: %w", err)
			}
			snap.Outputs = v.AsValueMap()
		}
		return forEachRecord(pb, func(rec *record) error {
			obj, err := rec.object()
			if err != nil {
				return err
			}
			snap.Objects[obj.Addr] = obj
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("state of project %q: %w", project, err)
	}
	return snap, nil
}

// Put records one object as it now exists, in one transaction, and bumps
// the project's serial. A record identical to the one stored is not written,
// so re-recording an unchanged object leaves the serial alone. The value
// must be wholly known: only applied objects are recorded.
func (s *Store) Put(project string, obj *resource.Object) error {
	if err := checkProject(project); err != nil {
		return err
	}
	rec, err := newRecord(obj, s.now())
	if err != nil {
		return fmt.Errorf("state of project %q: %w", project, err)
	}
	err = s.update(func(tx *bolt.Tx) error {
		pb, err := tx.Bucket(bucketProjects).CreateBucketIfNotExists([]byte(project))
		if err != nil {
			return err
		}
		ob, err := pb.CreateBucketIfNotExists(bucketObjects)
		if err != nil {
			return err
		}
		key := []byte(obj.Addr.String())
		if old := ob.Get(key); old != nil {
			same, err := rec.sameAs(old)
			if err != nil {
				return fmt.Errorf("record %s: %w", obj.Addr, err)
			}
			if same {
				return nil
			}
		}
		b, err := rec.encode()
		if err != nil {
			return err
		}
		if err := ob.Put(key, b); err != nil {
			return err
		}
		return s.bump(pb)
	})
	if err != nil {
		return fmt.Errorf("state of project %q: put %s: %w", project, obj.Addr, err)
	}
	return nil
}

// Delete removes the record of addr and bumps the project's serial.
// Deleting a record that does not exist changes nothing and is not an
// error, so an interrupted destroy can simply be run again.
func (s *Store) Delete(project string, addr resource.Addr) error {
	if err := checkProject(project); err != nil {
		return err
	}
	err := s.update(func(tx *bolt.Tx) error {
		pb := projectBucket(tx, project)
		if pb == nil {
			return nil
		}
		ob := pb.Bucket(bucketObjects)
		key := []byte(addr.String())
		if ob == nil || ob.Get(key) == nil {
			return nil
		}
		if err := ob.Delete(key); err != nil {
			return err
		}
		return s.bump(pb)
	})
	if err != nil {
		return fmt.Errorf("state of project %q: delete %s: %w", project, addr, err)
	}
	return nil
}

// Projects lists the projects ever recorded, sorted by name, including
// those whose objects have all been deleted: their lineage and serial live
// on.
func (s *Store) Projects() ([]string, error) {
	var names []string
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketProjects).ForEachBucket(func(k []byte) error {
			names = append(names, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("state store %s: list projects: %w", s.path, err)
	}
	return names, nil
}

// bump counts one change of a project, giving it a lineage at its first.
func (s *Store) bump(pb *bolt.Bucket) error {
	meta, err := readProjectMeta(pb)
	if err != nil {
		return err
	}
	if meta.Lineage == "" {
		meta.Lineage = s.newLineage()
	}
	meta.Serial++
	return writeProjectMeta(pb, meta)
}

// SetOutputs records the output values of an apply; values not wholly
// known are left out. The serial stays: outputs follow from the objects.
func (s *Store) SetOutputs(project string, outputs map[string]cty.Value) error {
	known := map[string]cty.Value{}
	for name, v := range outputs {
		if v.IsWhollyKnown() {
			known[name] = v
		}
	}
	obj := cty.EmptyObjectVal
	if len(known) > 0 {
		obj = cty.ObjectVal(known)
	}
	raw, err := ctyjson.Marshal(obj, cty.DynamicPseudoType)
	if err != nil {
		return fmt.Errorf("state of project %q: outputs: %w", project, err)
	}
	return s.updateMeta(project, func(meta *projectMeta) error {
		meta.Outputs = raw
		return nil
	})
}

// Claim records dir as the configuration directory of project. A project
// already claimed by another directory is refused (two directories with
// the same name would otherwise delete each other's objects) unless force
// is set, which moves the project to dir.
func (s *Store) Claim(project, dir string, force bool) error {
	return s.updateMeta(project, func(meta *projectMeta) error {
		if meta.Dir != "" && meta.Dir != dir && !force {
			return resource.Errorf(resource.ErrConflict,
				"project %q belongs to the configuration in %s, not %s: give this one its own project with -project NAME, or pass -move-project to move the project here",
				project, meta.Dir, dir)
		}
		meta.Dir = dir
		return nil
	})
}

func (s *Store) updateMeta(project string, fn func(*projectMeta) error) error {
	if err := checkProject(project); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		pb, err := tx.Bucket(bucketProjects).CreateBucketIfNotExists([]byte(project))
		if err != nil {
			return err
		}
		meta, err := readProjectMeta(pb)
		if err != nil {
			return err
		}
		if err := fn(&meta); err != nil {
			return err
		}
		return writeProjectMeta(pb, meta)
	})
}

func projectBucket(tx *bolt.Tx, project string) *bolt.Bucket {
	return tx.Bucket(bucketProjects).Bucket([]byte(project))
}

func readProjectMeta(pb *bolt.Bucket) (projectMeta, error) {
	var meta projectMeta
	raw := pb.Get(keyProjectMeta)
	if raw == nil {
		return meta, nil
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return meta, fmt.Errorf("project meta: %w", err)
	}
	return meta, nil
}

func writeProjectMeta(pb *bolt.Bucket, meta projectMeta) error {
	b, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	return pb.Put(keyProjectMeta, b)
}

// forEachRecord decodes, and upgrades, every record of a project in address
// key order.
func forEachRecord(pb *bolt.Bucket, fn func(*record) error) error {
	ob := pb.Bucket(bucketObjects)
	if ob == nil {
		return nil
	}
	return ob.ForEach(func(k, v []byte) error {
		rec, err := decodeRecord(v)
		if err != nil {
			return fmt.Errorf("record %s: %w", k, err)
		}
		if rec.Addr.String() != string(k) {
			return fmt.Errorf("record %s: holds %s", k, rec.Addr)
		}
		return fn(rec)
	})
}

// checkProject rejects names that cannot be a lock file name, since each
// project's lock is a file named after it.
func checkProject(project string) error {
	switch {
	case project == "", project == ".", project == "..":
		return fmt.Errorf("invalid project name %q", project)
	case strings.ContainsAny(project, "/\x00"):
		return fmt.Errorf("invalid project name %q: must not contain a slash or NUL", project)
	}
	return nil
}

// kindError carries a message of its own while still matching one of
// resource's sentinel kinds with errors.Is.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// newerFormatError refuses data this build cannot read rather than
// misreading it.
func newerFormatError(format int) error {
	return fmt.Errorf("state written by a newer berth (format %d); upgrade berth", format)
}
