// The signed-in user and the shell's helpers (announce, signedIn, signedOut), shared with the pages
// through context. Its own module so pages need not import the shell that imports them.
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

export const Session = createContext(null);
export const useSession = () => useContext(Session);
