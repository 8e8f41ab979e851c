// Package resources is the one list of the resources this service serves.
// Adding a resource is one line in All (and its package); removing one is
// deleting its line and its package (docs/NEW_SERVICE.md). cmd/api mounts
// the list and loads the configuration with its sections; the deploy and
// config tests load config.yaml with the same sections.
package resources

import (
	"github.com/prodready/service/internal/notes"
	"github.com/prodready/service/internal/resource"
)

// All returns every resource the service serves, in the order their routes
// mount: its configuration section, migrations, routes and checks each.
func All() resource.List {
	return resource.List{
		notes.Resource(),
	}
}
