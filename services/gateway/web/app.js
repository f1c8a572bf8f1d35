// The page's router: "/" asks and lists, "/councils/<id>" follows one council.

import { showCouncil } from "./council-page.js";
import { showHome } from "./home-page.js";

const root = document.getElementById("app");
const match = window.location.pathname.match(/^\/councils\/([^/]+)\/?$/);
if (match) showCouncil(root, decodeURIComponent(match[1]));
else showHome(root);
