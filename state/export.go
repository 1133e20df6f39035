package state

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/seed-e88ffcd2/berth/resource"
)

// exportFormat versions the export document; its records carry their own
// version and go through the same upgrades as stored ones.
const exportFormat = 1

type exportDoc struct {
	Format  int               `json:"format"`
	Project string            `json:"project"`
	Lineage string            `json:"lineage"`
	Serial  uint64            `json:"serial"`
	Objects []json.RawMessage `json:"objects"`
}

// Export writes a project's state as indented JSON, records in address
// order, for backups and tests. A project never written is
// resource.ErrNotFound.
func (s *Store) Export(project string, w io.Writer) error {
	if err := checkProject(project); err != nil {
		return err
	}
	doc := exportDoc{Format: exportFormat, Project: project, Objects: []json.RawMessage{}}
	err := s.view(func(tx *bolt.Tx) error {
		pb := projectBucket(tx, project)
		if pb == nil {
			return resource.ErrNotFound
		}
		meta, err := readProjectMeta(pb)
		if err != nil {
			return err
		}
		doc.Lineage, doc.Serial = meta.Lineage, meta.Serial
		var recs []*record
		if err := forEachRecord(pb, func(rec *record) error {
			recs = append(recs, rec)
			return nil
		}); err != nil {
			return err
		}
		// Keys sort as bytes; people read container.web[2] before [10].
		sortRecords(recs)
		for _, rec := range recs {
			b, err := rec.encode()
			if err != nil {
				return err
			}
			doc.Objects = append(doc.Objects, b)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("export state of project %q: %w", project, err)
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("export state of project %q: %w", project, err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("export state of project %q: %w", project, err)
	}
	return nil
}

// Import replaces a project's state with an exported one, keeping its
// lineage, serial and update times. It refuses, with resource.ErrConflict,
// to overwrite state of another lineage or a newer serial of the same one:
// either would make the store forget objects that exist.
func (s *Store) Import(project string, r io.Reader) error {
	if err := checkProject(project); err != nil {
		return err
	}
	recs, doc, err := readExport(r)
	if err != nil {
		return fmt.Errorf("import state of project %q: %w", project, err)
	}
	if doc.Project != "" && doc.Project != project {
		// The objects' owners are recorded on the host as the exporting
		// project; importing them elsewhere would not make them ours.
		return resource.Errorf(resource.ErrConflict, "import state of project %q: the export is of project %q", project, doc.Project)
	}
	err = s.update(func(tx *bolt.Tx) error {
		projects := tx.Bucket(bucketProjects)
		if pb := projects.Bucket([]byte(project)); pb != nil {
			cur, err := readProjectMeta(pb)
			if err != nil {
				return err
			}
			switch {
			case cur.Lineage != "" && cur.Lineage != doc.Lineage:
				return &kindError{
					msg:  fmt.Sprintf("the store holds lineage %s, the import lineage %s", cur.Lineage, doc.Lineage),
					kind: resource.ErrConflict,
				}
			case cur.Serial > doc.Serial:
				return &kindError{
					msg:  fmt.Sprintf("the store is at serial %d, newer than the import's %d", cur.Serial, doc.Serial),
					kind: resource.ErrConflict,
				}
			}
			if err := projects.DeleteBucket([]byte(project)); err != nil {
				return err
			}
		}
		pb, err := projects.CreateBucket([]byte(project))
		if err != nil {
			return err
		}
		ob, err := pb.CreateBucket(bucketObjects)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			b, err := rec.encode()
			if err != nil {
				return err
			}
			if err := ob.Put([]byte(rec.Addr.String()), b); err != nil {
				return err
			}
		}
		return writeProjectMeta(pb, projectMeta{Lineage: doc.Lineage, Serial: doc.Serial})
	})
	if err != nil {
		return fmt.Errorf("import state of project %q: %w", project, err)
	}
	return nil
}

// readExport decodes and checks a whole export before anything is written,
// so a bad file leaves the store as it was.
func readExport(r io.Reader) ([]*record, *exportDoc, error) {
	var doc exportDoc
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return nil, nil, err
	}
	if doc.Format > exportFormat {
		return nil, nil, newerFormatError(doc.Format)
	}
	if doc.Format < exportFormat {
		return nil, nil, fmt.Errorf("unknown export format %d", doc.Format)
	}
	if doc.Lineage == "" {
		return nil, nil, fmt.Errorf("export has no lineage")
	}
	seen := map[resource.Addr]bool{}
	recs := make([]*record, 0, len(doc.Objects))
	for i, raw := range doc.Objects {
		rec, err := decodeRecord(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("object %d: %w", i, err)
		}
		if _, err := rec.object(); err != nil {
			return nil, nil, err
		}
		if seen[rec.Addr] {
			return nil, nil, fmt.Errorf("object %s appears twice", rec.Addr)
		}
		seen[rec.Addr] = true
		recs = append(recs, rec)
	}
	return recs, &doc, nil
}

func sortRecords(recs []*record) {
	slices.SortFunc(recs, func(a, b *record) int { return compareAddr(a.Addr, b.Addr) })
}
