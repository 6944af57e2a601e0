// Package endpoint keeps tunnel endpoints usable while the network under
// them changes: Resolver resolves remotes given as DNS names through the
// DNS servers the router has learned and follows their TTLs, and
// Provisioner makes the HTTP request some ISPs need before a tunnel carries
// traffic (transix's "update URL"), again after every change of the
// tunnel's local address.
package endpoint
