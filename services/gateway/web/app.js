// The page's router: "/" asks and lists, "/councils/<id>" follows one council, "/sessions/<id>" one conversation.

import { showCouncil } from "./council-page.js";
import { showHome } from "./home-page.js";
import { showSession } from "./session-page.js";

const root = document.getElementById("app");
const path = window.location.pathname;
const council = path.match(/^\/councils\/([^/]+)\/?$/);
const session = path.match(/^\/sessions\/([^/]+)\/?$/);
if (council) showCouncil(root, decodeURIComponent(council[1]));
else if (session) showSession(root, decodeURIComponent(session[1]));
else showHome(root);
