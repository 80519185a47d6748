package ucwa

// unreadOperationID is operationId where the edge reads no input, as
// unreadInputOf gives it: no words, no resource path, so only null or a
// blank value may stand there.
var unreadOperationID = namedDestination{name: propOperationID.Name}

// unreadInputOf returns the input a name given where the edge reads no
// input names (a member inside a JSON value the edge does not read, a
// member or link of an embedded resource, an XML attribute, an element
// the edge skips or its name or rel): a phone destination of the table
// (see namedDestinationOf), or operationId, in any letter case or folding
// onto it, also as a .NET model-binding part ("x.operationId"); or nil.
// The edge keys a request by the operationId it reads (idempotency, the
// audit trail), and a pool that finds its inputs wherever they stand
// (Json.NET's SelectToken("..operationId"), a model that maps XML
// attributes) would key the call by another one, which the edge never
// read: a repeat the edge delivers again under a new key is the same
// operation to that pool, and one keyed alike by the edge another. So
// such an operationId is refused as a destination there is.
func unreadInputOf[T string | []byte](name T) *namedDestination {
	if d := namedDestinationOf(name); d != nil {
		return d
	}
	if isOperationIDName(name) {
		return &unreadOperationID
	}
	return nil
}

// isOperationIDName reports whether a name is operationId in any letter
// case or folding onto it, or has it as a .NET model-binding part.
func isOperationIDName[T string | []byte](name T) bool {
	if plainName(name) {
		return equalFoldASCII(propOperationID.Name, name)
	}
	return namesOperationID(foldString(string(name)))
}
